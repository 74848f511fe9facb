import Foundation

/// Parses QEMU's `-d exec` log: one line per translation block executed,
///
///     Trace 0: 0x7f9884000240 [0000000000000000/0000000000401070/1040c0b3/00000200] _start_c
///
/// where the second field inside the brackets is the guest pc. Other lines (QEMU's own
/// messages, the guest's output when it shares the stream) are skipped and counted.
public struct QEMULogParser {
    /// Bytes of a line that was cut by the end of the previous chunk.
    private var carry: [UInt8] = []
    public private(set) var lines: UInt64 = 0
    public private(set) var otherLines: UInt64 = 0

    public init() {}

    static let hexValue: [UInt8] = {
        var t = [UInt8](repeating: 0xff, count: 256)
        for (i, c) in "0123456789abcdef".utf8.enumerated() { t[Int(c)] = UInt8(i) }
        for (i, c) in "ABCDEF".utf8.enumerated() { t[Int(c)] = UInt8(10 + i) }
        return t
    }()

    /// Parses the complete lines of `chunk` and calls `sink` with each pc. A line cut at
    /// the end of the chunk is kept for the next call; `finish` parses what is left.
    public mutating func feed(_ chunk: UnsafeRawBufferPointer, sink: (UInt64) -> Void) {
        var pcs: [UInt64] = []
        feed(chunk, into: &pcs)
        for pc in pcs { sink(pc) }
    }

    /// Parses the complete lines of `chunk`, appending each pc to `out`.
    public mutating func feed(_ chunk: UnsafeRawBufferPointer, into out: inout [UInt64]) {
        guard chunk.count > 0 else { return }
        var start = 0
        let base = chunk.baseAddress!.assumingMemoryBound(to: UInt8.self)
        if !carry.isEmpty {
            guard let nl = memchr(base, 0x0a, chunk.count) else {
                carry.append(contentsOf: UnsafeBufferPointer(start: base, count: chunk.count))
                return
            }
            let n = UnsafeRawPointer(nl) - UnsafeRawPointer(base)
            carry.append(contentsOf: UnsafeBufferPointer(start: base, count: n))
            carry.withUnsafeBufferPointer { c in parseLine(c.baseAddress!, c.count) { out.append($0) } }
            carry.removeAll(keepingCapacity: true)
            start = n + 1
        }
        let end = chunk.count
        while start < end {
            let p = base + start
            guard let nl = memchr(p, 0x0a, end - start) else {
                carry.append(contentsOf: UnsafeBufferPointer(start: p, count: end - start))
                return
            }
            let len = UnsafeRawPointer(nl) - UnsafeRawPointer(p)
            if let pc = fastPC(p, len) {
                lines += 1
                out.append(pc)
            } else {
                parseLine(p, len) { out.append($0) }
            }
            start += len + 1
        }
    }

    /// The common line, "Trace N: 0x… [<16 hex>/<16 hex>/…", read at fixed offsets from
    /// the bracket. Nil for anything else, which the general parser then handles.
    @inline(__always)
    private mutating func fastPC(_ p: UnsafePointer<UInt8>, _ len: Int) -> UInt64? {
        guard len > 60, p[0] == 0x54, p[1] == 0x72, p[2] == 0x61, p[3] == 0x63, p[4] == 0x65, p[5] == 0x20 else { return nil }
        // The bracket follows the host pointer, whose width rarely changes in a log: try
        // where it was on the last line first.
        var i = bracket
        if i >= len || p[i] != 0x5b {
            i = 14
            while i < 40 && p[i] != 0x5b { i += 1 }
            guard i < 40 else { return nil }
            bracket = i
        }
        guard i + 35 < len, p[i + 17] == 0x2f, p[i + 34] == 0x2f else { return nil }
        let raw = UnsafeRawPointer(p + i + 18)
        let hi = QEMULogParser.hex8(raw.loadUnaligned(as: UInt64.self))
        let lo = QEMULogParser.hex8(raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        return hi << 32 | lo
    }

    /// Where the last line's bracket was.
    private var bracket = 26

    /// Eight ASCII hex digits (first digit in the lowest byte) to their value, eight at
    /// a time. The line's shape was checked ("Trace ", the bracket, the slashes); a byte
    /// that is not a hex digit only gives a wrong address, which then matches no
    /// instruction and is counted as foreign.
    @inline(__always)
    static func hex8(_ v: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let letter = (v >> 6) & ones                        // 1 for a-f / A-F
        let nib = (v & (ones &* 0x0F)) &+ letter &* 9
        // Bytes b0..b7 (b0 the most significant digit) into one 32-bit value.
        let t = ((nib & 0x000F_000F_000F_000F) << 4) | ((nib >> 8) & 0x000F_000F_000F_000F)
        let u = ((t & 0x0000_00FF_0000_00FF) << 8) | ((t >> 16) & 0x0000_00FF_0000_00FF)
        return ((u & 0xFFFF) << 16) | ((u >> 32) & 0xFFFF)
    }

    public mutating func finish(sink: (UInt64) -> Void) {
        if !carry.isEmpty {
            carry.withUnsafeBufferPointer { parseLine($0.baseAddress!, $0.count, sink) }
            carry.removeAll()
        }
    }

    @inline(__always)
    private mutating func parseLine(_ p: UnsafePointer<UInt8>, _ len: Int, _ sink: (UInt64) -> Void) {
        lines += 1
        // "Trace " then "N: 0x... [cs_base/pc/flags/cflags]".
        guard len > 12, p[0] == 0x54, p[1] == 0x72, p[2] == 0x61, p[3] == 0x63, p[4] == 0x65, p[5] == 0x20,
              let lb = memchr(p + 6, 0x5b, len - 6) else { otherLines += 1; return }
        var i = UnsafePointer<UInt8>(lb.assumingMemoryBound(to: UInt8.self)) - p + 1
        while i < len && p[i] != 0x2f { i += 1 }  // skip cs_base up to '/'
        i += 1
        var pc: UInt64 = 0
        var digits = 0
        let table = QEMULogParser.hexValue
        while i < len {
            let v = table[Int(p[i])]
            if v == 0xff { break }
            pc = pc << 4 | UInt64(v)
            digits += 1
            i += 1
        }
        guard digits > 0, i < len, p[i] == 0x2f else { otherLines += 1; return }
        sink(pc)
    }
}
