import Foundation

/// ovl's own compact trace: the start address of every translation block QEMU executed,
/// in order, as zig-zag varint deltas, plus the edge weights between consecutive blocks.
/// The block sequence is recovered from it against the image's CFG (walking
/// fall-throughs), so a trace stays valid when ovl's block splitting improves.
///
///     "OVLTRACE" u32 version=1 u32 flags
///     u64 code hash of the image's executable sections
///     u16 n + image name, u16 n + command line
///     u64 number of addresses, then the varint deltas
///     u32 number of edges, then (from, to, count) as varints, sorted
///     "OVLEND\0\0"
public enum TraceFile {
    public static let magic = Array("OVLTRACE".utf8)
    static let endMagic = Array("OVLEND\0\0".utf8)
    public static let version: UInt32 = 1

    /// FNV-1a over the bytes of the image's executable sections: the identity a trace is
    /// checked against.
    public static func codeHash(of elf: ELFFile) -> UInt64 {
        var h: UInt64 = 0xcbf29ce484222325
        for s in elf.sections where s.isExecutable && s.isAllocated && s.hasFileBytes {
            elf.bytes.withUnsafeBytes { raw in
                let p = raw.baseAddress!.assumingMemoryBound(to: UInt8.self) + Int(s.offset)
                for i in 0..<Int(s.size) { h = (h ^ UInt64(p[i])) &* 0x100000001b3 }
            }
        }
        return h
    }

    /// Writes a trace incrementally to a temporary file and renames it into place at the end.
    public final class Writer {
        let finalPath: String
        let tempPath: String
        let handle: FileHandle
        var buffer: [UInt8] = []
        var previous: UInt64 = 0
        public private(set) var count: UInt64 = 0
        /// How often each address followed each other one (written at the end).
        var pairs = CountTable<AddressPair>()
        var havePrevious = false
        var countOffset: UInt64 = 0

        public init(path: String, codeHash: UInt64, imageName: String, commandLine: String) throws {
            finalPath = path
            tempPath = path + ".tmp-\(getpid())"
            guard FileManager.default.createFile(atPath: tempPath, contents: nil),
                  let h = FileHandle(forWritingAtPath: tempPath) else {
                throw OvlError.file(path, "cannot be written")
            }
            handle = h
            var head = TraceFile.magic
            head.appendLE(TraceFile.version)
            head.appendLE(UInt32(0))
            head.appendLE(codeHash)
            head.appendString16(imageName)
            head.appendString16(commandLine)
            countOffset = UInt64(head.count)
            head.appendLE(UInt64(0))  // count, patched at the end
            buffer = head
        }

        public func append(_ pc: UInt64) {
            withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 1) { one in
                one[0] = pc
                append(contentsOf: UnsafeBufferPointer(one))
            }
        }

        /// Appends a batch of addresses: one delta varint each, and the pair counts.
        public func append(contentsOf pcs: UnsafeBufferPointer<UInt64>) {
            guard !pcs.isEmpty else { return }
            var prev = previous
            var i = 0
            if !havePrevious {
                prev = pcs[0]
                let delta = Int64(bitPattern: prev)
                buffer.appendVarint(UInt64(bitPattern: (delta << 1) ^ (delta >> 63)))
                havePrevious = true
                i = 1
            }
            // The buffer and counter as locals for the loop (no access checks per address).
            var out = buffer, counter = pairs
            buffer = []
            pairs = CountTable(capacity: 0)
            while i < pcs.count {
                let pc = pcs[i]
                let delta = Int64(bitPattern: pc &- prev)
                out.appendVarint(UInt64(bitPattern: (delta << 1) ^ (delta >> 63)))
                counter.add(AddressPair(from: prev, to: pc))
                prev = pc
                i += 1
                if out.count >= 1 << 20 {
                    handle.write(Data(out))
                    out.removeAll(keepingCapacity: true)
                }
            }
            buffer = out
            pairs = counter
            previous = prev
            count += UInt64(pcs.count)
            if buffer.count >= 1 << 20 { flush() }
        }

        func flush() {
            handle.write(Data(buffer))
            buffer.removeAll(keepingCapacity: true)
        }

        /// Finishes the file and renames it to its final name.
        public func close() throws {
            let all = pairs.entries.sorted { ($0.key.from, $0.key.to) < ($1.key.from, $1.key.to) }
            buffer.appendLE(UInt32(all.count))
            for (pair, c) in all {
                buffer.appendVarint(pair.from); buffer.appendVarint(pair.to); buffer.appendVarint(c)
            }
            buffer.append(contentsOf: TraceFile.endMagic)
            flush()
            handle.seek(toFileOffset: countOffset)
            var c: [UInt8] = []
            c.appendLE(count)
            handle.write(Data(c))
            handle.closeFile()
            if rename(tempPath, finalPath) != 0 {
                unlink(tempPath)
                throw OvlError.file(finalPath, "cannot be written (\(String(cString: strerror(errno))))")
            }
        }

        /// Abandons the file (on error or Ctrl-C).
        public func discard() {
            handle.closeFile()
            unlink(tempPath)
        }
    }

    public struct Header {
        public var codeHash: UInt64
        public var imageName: String
        public var commandLine: String
        public var count: UInt64
    }

    /// Reads a trace from a stream positioned at its start, calling `sink` with each
    /// address in order.
    public static func read(_ stream: ByteStream, progress: Progress? = nil, header headerCheck: (Header) throws -> Void,
                            sink: (UInt64) -> Void) throws {
        try readBatches(stream, progress: progress, header: headerCheck) { batch in
            for pc in batch { sink(pc) }
        }
    }

    /// Reads a trace from a stream positioned at its start, handing the addresses to
    /// `sink` in order, in batches of up to 64 Ki (the buffer is reused between calls).
    public static func readBatches(_ stream: ByteStream, progress: Progress? = nil, header headerCheck: (Header) throws -> Void,
                                   sink: (UnsafeBufferPointer<UInt64>) throws -> Void) throws {
        try readBatches(stream, progress: progress, header: headerCheck, collapsingOutside: nil) { batch, _ in try sink(batch) }
    }

    /// Stands in a batch for a run of addresses outside the window given to
    /// `readBatches(_:progress:header:collapsingOutside:sink:)`.
    public static let collapsedRun = UInt64.max

    /// Stands in a batch for more of the addresses before it: `repeatRun | (p - 1) << 32 | k`
    /// says that the last `p` addresses (1 to 4) go on repeating, in their order, for `k`
    /// more (a run of zero deltas, p = 1: a block that jumps to itself, a rep-string
    /// instruction's iterations; p = 2 to 4: a loop of that many translation blocks). A
    /// non-canonical x86-64 address, never a real one; the reader writes it only when the
    /// window does not reach it (`DeltaDecoder.repeatsFit(window:)`), and only right after
    /// the `p` real addresses it repeats, in the same batch.
    public static let repeatRun: UInt64 = 1 << 63

    /// What a batch of `readBatches(_:progress:header:collapsingOutside:sink:)` holds
    /// beyond its entries: addresses collapsed into `collapsedRun`s, folded into
    /// `repeatRun`s, and of those, folded into marks of loops.
    public struct BatchCounts {
        public var collapsed: UInt64
        public var repeated: UInt64
        public var inLoops: UInt64
    }

    /// Whether `v` is a `repeatRun` (in a batch that holds any).
    @inline(__always)
    static func isRepeatRun(_ v: UInt64) -> Bool { v >> 34 == repeatRun >> 34 }
    /// A `repeatRun`'s period (the addresses before it that repeat) and count.
    @inline(__always)
    static func repeatPeriod(_ v: UInt64) -> Int { Int(truncatingIfNeeded: v >> 32 & 3) + 1 }
    @inline(__always)
    static func repeatCount(_ v: UInt64) -> Int { Int(truncatingIfNeeded: v & 0xffff_ffff) }

    /// The real address before `pcs[i]` in a batch that may hold `repeatRun`s (which
    /// always follow the addresses they repeat), or `previous` when the batch holds none
    /// before `i`.
    static func address(before i: Int, in pcs: UnsafeBufferPointer<UInt64>, repeats: Bool, else previous: UInt64) -> UInt64 {
        guard i > 0 else { return previous }
        let a = pcs[i - 1]
        guard repeats && isRepeatRun(a) else { return a }
        // The run's last address: its pattern's (k - 1) mod p.
        let p = repeatPeriod(a), k = repeatCount(a)
        let first = i - 1 - p
        return first >= 0 ? pcs[first + (k - 1) % p] : previous
    }

    /// As `readBatches(_:progress:header:sink:)`, but when `window` is given (the addresses
    /// `pc` with `pc &- low < span`), each run of addresses outside it reaches `sink` as one
    /// `collapsedRun`, with the count of addresses so collapsed in the batch. On a kernel's
    /// boot trace two addresses in three lie outside the image (the decompressor, user
    /// space): this loop, which decodes them anyway, drops them at the cost of a compare.
    /// A run that spans two batches starts each with a `collapsedRun`.
    ///
    /// With a window, a run of the same address inside it (zero deltas: 7.4 M of a glibc
    /// CRC program's 8.8 M addresses, 38 M of a kernel boot's) reaches `sink` as the
    /// address and one `repeatRun` counting the rest, with the count of addresses so
    /// folded in the batch (`repeated`); the reader skips the run's zero bytes eight at a
    /// time. Each batch holds the address itself before its first `repeatRun`. Loops of
    /// two to four addresses are folded too (`DeltaDecoder.foldLoops`) while
    /// `foldingLoops` says so (a profile reader asks whether its resolver is behind).
    public static func readBatches(_ stream: ByteStream, progress: Progress? = nil, header headerCheck: (Header) throws -> Void,
                                   collapsingOutside window: (low: UInt64, span: UInt64)?,
                                   foldingLoops: () -> Bool = { true },
                                   sink: (UnsafeBufferPointer<UInt64>, _ counts: BatchCounts) throws -> Void) throws {
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        var len = 0
        var pos = 0
        func fill(_ need: Int) throws -> Bool {
            if len - pos >= need { return true }
            if pos > 0 { buf.replaceSubrange(0..<(len - pos), with: buf[pos..<len]); len -= pos; pos = 0 }
            while len < need {
                let n = try stream.read(into: &buf, at: len, count: buf.count - len)
                if n == 0 { return false }
                len += n
            }
            return true
        }
        func truncated() -> OvlError { OvlError.file(stream.path, "truncated ovl trace") }
        guard try fill(8 + 8 + 8 + 2), Array(buf[0..<8]) == magic else { throw OvlError.file(stream.path, "not an ovl trace") }
        let version = buf.readLE32(8)
        guard version == TraceFile.version else { throw OvlError.file(stream.path, "ovl trace version \(version) is not supported (this ovl reads version \(TraceFile.version))") }
        let hash = buf.readLE64(16)
        pos = 24
        func string16() throws -> String {
            guard try fill(2) else { throw truncated() }
            let n = Int(buf[pos]) | Int(buf[pos + 1]) << 8
            pos += 2
            guard try fill(n) else { throw truncated() }
            let s = String(decoding: buf[pos..<(pos + n)], as: UTF8.self)
            pos += n
            return s
        }
        let name = try string16()
        let cmd = try string16()
        guard try fill(8) else { throw truncated() }
        let count = buf.readLE64(pos)
        pos += 8
        try headerCheck(Header(codeHash: hash, imageName: name, commandLine: cmd, count: count))
        var decoder = DeltaDecoder(window: window)
        let batchCapacity = 1 << 16
        let out = UnsafeMutablePointer<UInt64>.allocate(capacity: batchCapacity)
        defer { out.deallocate() }
        var done: UInt64 = 0
        var eof = false
        while done < count {
            if len - pos < 10 && !eof {
                if pos > 0 { buf.replaceSubrange(0..<(len - pos), with: buf[pos..<len]); len -= pos; pos = 0 }
                while len < buf.count {
                    let n = try stream.read(into: &buf, at: len, count: buf.count - len)
                    if n == 0 { eof = true; break }
                    len += n
                }
                progress?.update(stream.bytesRead)
                try Interrupt.check()
            }
            // Decode varints while at least 10 bytes (the longest) remain, or to the end,
            // into the batch.
            var batch = DeltaDecoder.Batch(out: out, limit: Int(min(UInt64(batchCapacity), count - done)))
            let ok: Bool = buf.withUnsafeBufferPointer { p in
                let base = p.baseAddress!
                var i = pos
                defer { pos = i }
                guard decoder.decodeWhole(base, at: &i, safeEnd: len - 10, into: &batch) else { return false }
                // The last bytes of the file.
                while eof && i < len && batch.taken < batch.limit {
                    var v: UInt64 = 0
                    var shift: UInt64 = 0
                    while true {
                        guard i < len else { return false }
                        let b = p[i]
                        v |= UInt64(b & 0x7f) << shift
                        i += 1
                        if b < 0x80 { break }
                        shift += 7
                        guard shift < 64 else { return false }
                    }
                    decoder.add(v, into: &batch)
                }
                return true
            }
            guard ok else { throw truncated() }
            done += UInt64(batch.taken)
            if decoder.repeating && foldingLoops() { decoder.foldLoopsWhereWorthIt(&batch) }
            if batch.produced > 0 {
                try sink(UnsafeBufferPointer(start: out, count: batch.produced),
                         BatchCounts(collapsed: batch.collapsed, repeated: batch.repeated, inLoops: batch.inLoops))
            }
            guard done == count || !(eof && pos >= len) else { throw truncated() }
        }
        // The table of address pairs and the end mark: a file cut there is cut too.
        guard try fill(4) else { throw truncated() }
        let pairs = Int(buf.readLE32(pos))
        pos += 4
        for _ in 0..<(3 * pairs) {
            guard try fill(1) else { throw truncated() }
            while buf[pos] >= 0x80 {
                pos += 1
                guard try fill(1) else { throw truncated() }
            }
            pos += 1
        }
        guard try fill(endMagic.count) else { throw truncated() }
        guard Array(buf[pos..<(pos + endMagic.count)]) == endMagic else {
            throw OvlError.file(stream.path, "ovl trace does not end with its end mark (damaged, or not written by ovl)")
        }
    }
}

/// The trace's addresses from their zig-zag varint deltas, with runs outside a window
/// collapsed (`TraceFile.readBatches(_:progress:header:collapsingOutside:sink:)`). Its
/// loop is a function of its own so that the running address and the batch's counters
/// stay in registers: in the reader's closure they lived on the stack, and every address
/// waited on a store and a load of the one before.
struct DeltaDecoder {
    /// One batch being filled: where, how many addresses it may take, and what it holds.
    struct Batch {
        let out: UnsafeMutablePointer<UInt64>
        let limit: Int
        /// Addresses decoded, those written to `out`, and those collapsed.
        var taken = 0
        var produced = 0
        var collapsed: UInt64 = 0
        /// Addresses folded into `TraceFile.repeatRun`s, and of those into loops' marks.
        var repeated: UInt64 = 0
        var inLoops: UInt64 = 0
        /// Whether the last address was collapsed (each batch starts a run afresh, so
        /// that a batch with collapsed addresses holds at least one `collapsedRun`).
        var inRun = false
    }

    private var previous: UInt64 = 0
    private let collapsing: Bool
    private let low: UInt64
    private let span: UInt64
    /// Whether runs of zero deltas and short loops become `TraceFile.repeatRun`s.
    let repeating: Bool

    /// Without a window, only `TraceFile.collapsedRun` itself is "outside", and it is kept
    /// as it is (`inRun` stays false), and no run of zero deltas is folded.
    init(window: (low: UInt64, span: UInt64)?) {
        collapsing = window != nil
        low = window?.low ?? 0
        span = window?.span ?? TraceFile.collapsedRun
        repeating = window.map(DeltaDecoder.repeatsFit(window:)) ?? false
    }

    /// Whether no `TraceFile.repeatRun` (with any count) lies in the window, so that an
    /// address inside it is never read as one. True of every real x86-64 image, whose
    /// addresses are canonical.
    static func repeatsFit(window w: (low: UInt64, span: UInt64)) -> Bool {
        let marks = TraceFile.repeatRun
        return (marks &- w.low) >= w.span && (w.low &- marks) >= 1 << 34
    }

    /// One varint's value, a zig-zag delta: the next address, written or collapsed.
    @inline(__always)
    mutating func add(_ v: UInt64, into b: inout Batch) {
        var state = (previous, b.inRun, b.taken, b.produced, b.collapsed)
        DeltaDecoder.step(v, &state, b.out, low: low, span: span, collapsing: collapsing)
        (previous, b.inRun, b.taken, b.produced, b.collapsed) = state
    }

    /// The window and whether to collapse come in as values: read through `self` inside
    /// the loop, they were loaded again after every store to `out`, which might have
    /// written them as far as the compiler knew.
    @inline(__always)
    private static func step(_ v: UInt64, _ s: inout (UInt64, Bool, Int, Int, UInt64), _ out: UnsafeMutablePointer<UInt64>,
                             low: UInt64, span: UInt64, collapsing: Bool) {
        let delta = Int64(bitPattern: v >> 1) ^ -Int64(bitPattern: v & 1)
        let pc = s.0 &+ UInt64(bitPattern: delta)
        s.0 = pc
        s.2 &+= 1
        // In arithmetic rather than branches on whether the address is inside (inside
        // and outside alternate at every system call of a kernel's trace).
        let inside = (pc &- low).subtractingReportingOverflow(span).overflow
        let outsideBit = UInt64(inside ? 0 : 1)
        // All ones outside: `collapsedRun` is all ones.
        out[s.3] = pc | (0 &- outsideBit)
        let runBit = UInt64(s.1 ? 1 : 0)
        s.3 &+= Int(truncatingIfNeeded: 1 &- (outsideBit & runBit))
        s.4 &+= outsideBit
        s.1 = !inside && collapsing
    }

    /// The shortest stretch worth a mark, in periods.
    static let minimumPeriods = 3

    /// Batches left to pass by before looking for loops again, and how many the next
    /// miss passes by.
    private var loopSkip = 0
    private var loopBackoff = 1

    /// `foldLoops`, where the batches before had loops to fold: looking costs a few
    /// compares an address, and where a trace has few loops (a kernel's boot: the reader
    /// sets that pace) a batch that folds less than half its addresses makes the reader
    /// pass by the next 1, 2, 4 ... 256 batches before it looks again.
    mutating func foldLoopsWhereWorthIt(_ b: inout Batch) {
        if loopSkip > 0 {
            loopSkip -= 1
            return
        }
        let before = b.produced, repeated = b.repeated
        foldLoops(&b)
        if (b.repeated - repeated) * 2 < UInt64(before) {
            loopSkip = loopBackoff
            loopBackoff = min(loopBackoff * 2, 256)
        } else {
            loopBackoff = 1
        }
    }

    /// Replaces, in a decoded batch, each stretch where the addresses go on repeating the
    /// last 2 to 4 before it (a loop of that many translation blocks, the address window
    /// holding them all) for at least `minimumPeriods` periods by one `repeatRun`. On a
    /// glibc CRC program's trace, after its runs of one address, 1.38 M of the 1.42 M
    /// addresses left are one loop of three blocks. The batch is rewritten in place
    /// (a mark is never longer than what it replaces); the pattern a mark repeats stays
    /// right before it.
    func foldLoops(_ b: inout Batch) {
        let out = b.out, n = b.produced
        var r = 0, w = 0
        var folded: UInt64 = 0
        @inline(__always) func real(_ v: UInt64) -> Bool { v != TraceFile.collapsedRun && !TraceFile.isRepeatRun(v) }
        while r < n {
            var p = 2
            var length = 0
            while p <= 4 {
                // The pattern: the last `p` entries written, all real addresses.
                if w >= p && r + p * DeltaDecoder.minimumPeriods <= n && out[r] == out[w - p] && out[r + 1] == out[w - p + 1] {
                    var ok = true
                    for j in 0..<p where !real(out[w - p + j]) { ok = false }
                    if ok {
                        var l = 0
                        while r + l < n && out[r + l] == out[w - p + l % p] { l += 1 }
                        if l >= p * DeltaDecoder.minimumPeriods { length = l; break }
                    }
                }
                p += 1
            }
            if length > 0 {
                out[w] = TraceFile.repeatRun | UInt64(p - 1) << 32 | UInt64(length)
                w += 1
                r += length
                folded += UInt64(length)
            } else {
                out[w] = out[r]
                w += 1
                r += 1
            }
        }
        b.produced = w
        b.repeated += folded
        b.inLoops += folded
    }

    /// Decodes from `p + i` while a varint of the longest length (10 bytes) fits before
    /// `safeEnd` and the batch has room; false for a varint longer than 64 bits.
    mutating func decodeWhole(_ p: UnsafePointer<UInt8>, at index: inout Int, safeEnd: Int, into b: inout Batch) -> Bool {
        var state = (previous, b.inRun, b.taken, b.produced, b.collapsed)
        var i = index
        let limit = b.limit, out = b.out
        let low = self.low, span = self.span, collapsing = self.collapsing, repeating = self.repeating
        var repeated: UInt64 = 0
        var ok = true
        while state.2 < limit && i <= safeEnd {
            var v = UInt64(p[i])
            if v == 0 && repeating && !state.1 && state.3 > 0 {
                // The address before again, inside the window, and this batch holds it:
                // the whole run of zero deltas at once, counted in a `repeatRun` right
                // after it.
                let most = min(limit - state.2, safeEnd + 1 - i)
                var z = 1
                while z + 8 <= most && UnsafeRawPointer(p + i + z).loadUnaligned(as: UInt64.self) == 0 { z &+= 8 }
                while z < most && p[i + z] == 0 { z &+= 1 }
                i &+= z
                state.2 &+= z
                repeated &+= UInt64(z)
                let last = out[state.3 - 1]
                if TraceFile.isRepeatRun(last) {
                    out[state.3 - 1] = last &+ UInt64(z)
                } else {
                    out[state.3] = TraceFile.repeatRun | UInt64(z)
                    state.3 &+= 1
                }
                continue
            }
            i &+= 1
            if v >= 0x80 {
                v &= 0x7f
                var shift: UInt64 = 7
                while true {
                    let byte = p[i]
                    i &+= 1
                    v |= UInt64(byte & 0x7f) << shift
                    if byte < 0x80 { break }
                    shift &+= 7
                    if shift >= 64 { ok = false; break }
                }
                if !ok { break }
            }
            DeltaDecoder.step(v, &state, out, low: low, span: span, collapsing: collapsing)
        }
        index = i
        (previous, b.inRun, b.taken, b.produced, b.collapsed) = state
        b.repeated &+= repeated
        return ok
    }
}

extension Array where Element == UInt8 {
    mutating func appendLE(_ v: UInt32) { for i in 0..<4 { append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) } }
    mutating func appendLE(_ v: UInt64) { for i in 0..<8 { append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } }
    mutating func appendVarint(_ v0: UInt64) {
        var v = v0
        while v >= 0x80 { append(UInt8(v & 0x7f) | 0x80); v >>= 7 }
        append(UInt8(v))
    }
    mutating func appendString16(_ s: String) {
        let u = Array(s.utf8.prefix(65535))
        append(UInt8(u.count & 0xff)); append(UInt8(u.count >> 8))
        append(contentsOf: u)
    }
    func readLE32(_ o: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(self[o + $1]) << (8 * UInt32($1)) } }
    func readLE64(_ o: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | UInt64(self[o + $1]) << (8 * UInt64($1)) } }
}
