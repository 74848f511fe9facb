import Foundation

/// Where a profile came from.
public enum ProfileFormat: String, Sendable, Codable {
    /// ovl's own compact trace (`ovl record`).
    case ovlTrace = "ovl-trace"
    /// A QEMU `-d exec,nochain` log.
    case qemuLog = "qemu-exec-log"
    /// A BOLT `.fdata` branch profile (edge weights only, no order).
    case fdata = "bolt-fdata"
}

/// Counts of what a profile's addresses were.
public struct ProfileStats: Sendable, Codable, Equatable {
    /// Adds what `AddressClassifier.classify(_:collapsedRuns:into:)` counted.
    mutating func addClassified(_ c: ProfileStats) {
        addresses += c.addresses
        repIterations += c.repIterations
        misaligned += c.misaligned
        excludedSection += c.excludedSection
        foreign += c.foreign
    }

    /// Addresses read (translation blocks for a trace, branch records for `.fdata`).
    public var addresses: UInt64 = 0
    /// Addresses that are instruction starts in the analysed code.
    public var matched: UInt64 = 0
    /// Inside the analysed code but not at an instruction start: the mark of a profile
    /// taken from another build.
    public var misaligned: UInt64 = 0
    /// In executable sections left out of the analysis (such as `.init.text`).
    public var excludedSection: UInt64 = 0
    /// Not in the image at all: firmware, user space, the vDSO.
    public var foreign: UInt64 = 0
    /// rep-prefixed string instructions logged once per iteration, folded into one.
    public var repIterations: UInt64 = 0
    /// Lines of a log that were not trace lines.
    public var otherLines: UInt64 = 0
    /// Blocks entered after recovering the block sequence.
    public var blocksEntered: UInt64 = 0
}

/// An execution profile of one phase (a boot, a workload), resolved against a program's
/// blocks and chains. A trace gives the exact order of execution (`chainRuns`); an edge
/// profile gives weights only.
public final class Profile: @unchecked Sendable {
    public let source: String
    public let format: ProfileFormat
    public var name: String
    /// Whether the order of execution is known (a trace), so loads can be replayed exactly.
    public let hasSequence: Bool
    /// Times each block was entered.
    public internal(set) var blockCounts: [UInt64]
    /// Transfers between different chains, keyed `from << 32 | to`.
    public internal(set) var chainEdges: [UInt64: UInt64] = [:]
    /// The sequence of chains executed, consecutive repeats folded; -1 marks a stretch
    /// outside the analysed code (user space in a kernel trace, an excluded section).
    /// Built on each read from `encodedChainRuns` (`forEachChainRun` reads it in place).
    public internal(set) var chainRuns: [Int32] {
        get {
            var out: [Int32] = []
            out.reserveCapacity(chainRunCount)
            forEachChainRun { out.append($0) }
            return out
        }
        set { encodedChainRuns = newValue }
    }
    /// `chainRuns` as kept: a loop's runs written once, then `loopMark + (k << 2 | (q - 1))`
    /// saying that the last `q` entries (2 to 4) ran `k` more times in that order (on a
    /// glibc CRC program's trace, a loop of three blocks in two chains ran 460,000 times).
    public internal(set) var encodedChainRuns: [Int32] = []
    /// Marks a loop in `encodedChainRuns` and `segments`: entries below `loopLimit`
    /// (block and chain numbers, and `-2 - first`, stay above it).
    public static let loopMark = Int32.min
    static let loopLimit: Int32 = -(1 << 30)
    /// The most periods one loop mark counts.
    static let maxLoops = (1 << 28) - 1
    @inline(__always)
    static func loopEntry(periods k: Int, length q: Int) -> Int32 { loopMark + Int32(k << 2 | (q - 1)) }
    @inline(__always)
    static func loopParts(_ v: Int32) -> (periods: Int, length: Int) {
        let code = Int(v) - Int(loopMark)
        return (code >> 2, (code & 3) + 1)
    }
    /// Each chain run in order, loops as often as they ran.
    @inline(__always)
    public func forEachChainRun(_ body: (Int32) throws -> Void) rethrows {
        try encodedChainRuns.withUnsafeBufferPointer { r in
            for i in 0..<r.count {
                let v = r[i]
                if v < Profile.loopLimit {
                    let (k, q) = Profile.loopParts(v)
                    for _ in 0..<k { for j in (i - q)..<i { try body(r[j]) } }
                } else {
                    try body(v)
                }
            }
        }
    }
    /// How many chain runs `chainRuns` holds.
    public var chainRunCount: Int {
        var n = 0
        for v in encodedChainRuns { n += v < Profile.loopLimit ? Profile.loopParts(v).periods * Profile.loopParts(v).length : 1 }
        return n
    }
    /// Entries into each chain straight from outside the analysed code (the program's
    /// start, a return from user space), which no edge records.
    public internal(set) var outsideEntries: [Int32: UInt64] = [:]
    /// Straight-line stretches of execution: blocks that ran one after the other in
    /// memory order. What demand paging of the original layout is replayed from. A trace
    /// has tens of millions, almost all of one block, so they are kept one entry a
    /// segment where they can (`Profile.encodeSegments`): a block's number for a segment
    /// of that block alone, -1 for a stretch outside the analysed code, and a longer one
    /// as `-2 - first` followed by its last block. A segment that repeats the one before
    /// it (a loop whose body lies in order in memory, every iteration) is not written
    /// again: `repeatMark | k` after a segment says it ran k more times in a row (on a
    /// glibc program's 8.8 M segments, 84% were such repeats). A loop's segments are
    /// written once, then `Profile.loopEntry(periods: k, length: q)` says that the last
    /// `q` segments (2 to 4, with their repeats) ran `k` more times in that order.
    /// `forEachSegment`, `forEachSegmentRun`, `segmentFirst` and `segmentLast` read it.
    public internal(set) var segments: [Int32] = []
    /// Set in an entry of `segments` that counts repeats of the segment before it (block
    /// numbers stay below it: the address table keeps flags in bits 29 and 30).
    public static let repeatMark: Int32 = 1 << 30
    /// The most repeats one entry counts; longer runs take several entries.
    static let maxRepeats = Int(repeatMark) - 1
    /// Each segment's first and last block (-1 and -1 for a stretch outside), in order,
    /// a repeated segment as often as it ran.
    @inline(__always)
    public func forEachSegment(_ body: (_ first: Int32, _ last: Int32) throws -> Void) rethrows {
        try forEachSegmentRun { f, l, repeats in
            for _ in 0...repeats { try body(f, l) }
        }
    }
    /// Each run of equal segments once: its first and last block and how many more times
    /// than once it ran in a row (0 for most; a run longer than `maxRepeats` takes several
    /// count entries, added up here). The next run is a different segment.
    @inline(__always)
    public func forEachSegmentRun(_ body: (_ first: Int32, _ last: Int32, _ repeats: Int) throws -> Void) rethrows {
        try segments.withUnsafeBufferPointer { s in
            var i = 0
            while i < s.count {
                let v = s[i]
                let f: Int32, l: Int32
                if v >= -1 {
                    (f, l) = (v, v)
                    i += 1
                } else if v < Profile.loopLimit {
                    // (The pattern comes back from out of line, not the body going there:
                    // a closure passed on kept its captures in memory for the whole loop.)
                    let (k, pattern) = Profile.segmentLoop(s, at: i)
                    for _ in 0..<k { for (f, l, r) in pattern { try body(f, l, r) } }
                    i += 1
                    continue
                } else {
                    (f, l) = (-2 - v, s[i + 1])
                    i += 2
                }
                var repeats = 0
                while i < s.count && s[i] >= Profile.repeatMark {
                    repeats += Int(s[i] & ~Profile.repeatMark)
                    i += 1
                }
                try body(f, l, repeats)
            }
        }
    }
    /// The segments' first blocks, decoded (tests, reports).
    public var segmentFirst: [Int32] {
        var out: [Int32] = []
        forEachSegment { f, _ in out.append(f) }
        return out
    }
    /// The segments' last blocks, decoded.
    public var segmentLast: [Int32] {
        var out: [Int32] = []
        forEachSegment { _, l in out.append(l) }
        return out
    }
    /// The loop mark at `s[i]`: how many more times the runs of the `q` segments before
    /// it ran, and those runs (read back from it: a repeat count follows its segment, a
    /// pair's first entry is below -1 and its last is not).
    @inline(never)
    static func segmentLoop(_ s: UnsafeBufferPointer<Int32>, at i: Int) -> (Int, [(Int32, Int32, Int)]) {
        let (k, q) = loopParts(s[i])
        var pattern: [(Int32, Int32, Int)] = []
        var j = i - 1
        while pattern.count < q {
            var repeats = 0
            while s[j] >= repeatMark { repeats += Int(s[j] & ~repeatMark); j -= 1 }
            if j >= 1 && s[j - 1] < -1 && s[j - 1] >= loopLimit {
                pattern.append((-2 - s[j - 1], s[j], repeats))
                j -= 2
            } else {
                pattern.append((s[j], s[j], repeats))
                j -= 1
            }
        }
        return (k, pattern.reversed())
    }

    /// Segments given as first and last blocks, in the encoding of `segments`.
    public static func encodeSegments(first: [Int32], last: [Int32]) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(first.count)
        var i = 0
        while i < min(first.count, last.count) {
            let f = first[i], l = last[i]
            var j = i + 1
            while j < min(first.count, last.count) && first[j] == f && last[j] == l { j += 1 }
            appendSegment(f, l, repeats: j - i - 1, to: &out)
            i = j
        }
        return out
    }

    /// Appends one segment, run `repeats + 1` times in a row, in the encoding of `segments`.
    @inline(__always)
    static func appendSegment(_ f: Int32, _ l: Int32, repeats: Int, to out: inout [Int32]) {
        if f == l { out.append(f) } else { out.append(-2 - f); out.append(l) }
        var left = repeats
        while left > 0 {
            let k = min(left, maxRepeats)
            out.append(repeatMark | Int32(k))
            left -= k
        }
    }
    public internal(set) var stats = ProfileStats()
    /// `.fdata` records whose symbols are not in the image (the first 100).
    public internal(set) var unresolvedRecords: [String] = []

    init(source: String, format: ProfileFormat, hasSequence: Bool, blockCount: Int) {
        self.source = source
        self.format = format
        self.name = source == "-" ? "stdin" : ((source as NSString).lastPathComponent)
        self.hasSequence = hasSequence
        self.blockCounts = [UInt64](repeating: 0, count: blockCount)
    }

    /// For tests and synthetic workloads: a profile from a chain sequence.
    public init(name: String, chainRuns: [Int32], blockCount: Int, chainEdges: [UInt64: UInt64]) {
        self.source = name
        self.format = .ovlTrace
        self.name = name
        self.hasSequence = true
        self.blockCounts = [UInt64](repeating: 0, count: blockCount)
        self.encodedChainRuns = chainRuns
        self.chainEdges = chainEdges
    }

    public static func edgeKey(_ from: Int32, _ to: Int32) -> UInt64 { UInt64(UInt32(bitPattern: from)) << 32 | UInt64(UInt32(bitPattern: to)) }
}

/// Turns a stream of translation-block start addresses into block entries: looks each
/// address up, walks fall-throughs that one translation block spans, folds QEMU's
/// per-iteration logging of rep-prefixed string instructions, and records chain runs,
/// chain transfers and address statistics. Everything accumulates in the builder's own
/// storage (this loop sees every address of a gigabyte log) and lands in the profile at
/// `finish()`.
///
/// Per address: one lookup in the program's address table (`AddressTable`, done by an
/// `AddressClassifier`), one read of the block's packed facts, and counters; chain transfers count in a flat hash table and
/// entries from outside in an array, turned into the profile's dictionaries at the end.
struct BlockSequenceBuilder {
    let program: Program
    let profile: Profile
    let collectRuns: Bool
    /// What the loop needs of each block and its count, in one 16-byte record: the
    /// block's entry reads the facts and writes the count in the same cache line.
    struct BlockFacts {
        var chain: Int32
        /// Bit 0: ends without a transfer and runs on into the next block (a translation
        /// block may span both); bit 1: control continues into the next block in memory.
        var flags: UInt32
        var count: UInt64
    }
    /// The first half of the work per address, here for `add(_:)`; the two-stage readers
    /// run their own on the reader thread and hand over its results (`addClassified`).
    private var classifier: AddressClassifier
    /// The state each address reads and writes, and the scratch's pointers. A batch's
    /// loop works on a local copy (`addClassified(_:counts:)`): read through `self`,
    /// every field was loaded again after each store through the scratch's pointers,
    /// which might have written it as far as the compiler knew.
    struct Hot {
        var current = -1
        var lastChain: Int32 = -2
        /// The last segment's last block (-1 after a stretch outside, -2 before any).
        var segmentEnd: Int32 = -2
        // The last chain transfer and its count, folded into `chainEdges` when it
        // changes: loops repeat the same transfer many times in a row.
        var pendingKey: UInt64 = .max
        var pendingCount: UInt64 = 0
        var scratchRuns = 0
        var scratchSegments = 0
        var matched: UInt64 = 0
        var misaligned: UInt64 = 0
        var excluded: UInt64 = 0
        var foreign: UInt64 = 0
        var blocksEntered: UInt64 = 0
        let facts: UnsafeMutablePointer<BlockFacts>
        let outsideEntries: UnsafeMutablePointer<UInt64>
        let runs: UnsafeMutablePointer<Int32>
        let firsts: UnsafeMutablePointer<Int32>
        let lasts: UnsafeMutablePointer<Int32>
        /// How many more times each scratch segment ran in a row.
        let repeats: UnsafeMutablePointer<Int>
    }
    private var hot: Hot
    // Results.
    private var stats = ProfileStats()
    /// Counts per chain transfer (`Profile.edgeKey`).
    private var chainEdges = CountTable<UInt64>()
    private var chainRuns: [Int32] = []
    /// Segments in `Profile.segments`'s encoding.
    private var segments: [Int32] = []
    /// The newest chain runs and segments, written through plain pointers and moved to
    /// the arrays above `Scratch.capacity` at a time: an array's append checks that its
    /// buffer is unique and has room on every call, and the loop kept its state in memory
    /// around those calls (a third of the resolver's samples on a glibc program's trace).
    private let scratch: Scratch

    /// With the counts per block and the entries from outside per chain, for the same
    /// reason: an array stored in this struct is checked for a unique buffer at every
    /// write.
    final class Scratch {
        static let capacity = 1 << 14
        let runs = UnsafeMutablePointer<Int32>.allocate(capacity: capacity)
        let firsts = UnsafeMutablePointer<Int32>.allocate(capacity: capacity)
        let lasts = UnsafeMutablePointer<Int32>.allocate(capacity: capacity)
        let repeats = UnsafeMutablePointer<Int>.allocate(capacity: capacity)
        /// Segments being moved, encoded (`Profile.segments`): up to two entries each and
        /// a count of repeats (runs longer than `Profile.maxRepeats` go by `appendSegment`).
        let encoded = UnsafeMutablePointer<Int32>.allocate(capacity: 3 * capacity)
        let facts: UnsafeMutableBufferPointer<BlockFacts>
        let outsideEntries: UnsafeMutableBufferPointer<UInt64>
        init(facts f: [BlockFacts], chains: Int) {
            facts = .allocate(capacity: f.count)
            _ = facts.initialize(from: f)
            outsideEntries = .allocate(capacity: chains)
            outsideEntries.initialize(repeating: 0)
        }
        deinit {
            runs.deallocate()
            firsts.deallocate()
            lasts.deallocate()
            repeats.deallocate()
            encoded.deallocate()
            facts.deallocate()
            outsideEntries.deallocate()
        }
    }
    init(program: Program, chains: Chains, profile: Profile) {
        self.program = program
        self.profile = profile
        self.collectRuns = profile.hasSequence
        // The classes' arrays read into locals once, not checked for exclusive access a
        // block, and the facts written in place (appending checked the array's uniqueness
        // every time: 2 ms of a glibc program's trace).
        let kinds = program.blockKind, continues = program.blockContinues, counts = profile.blockCounts
        let blockChain = chains.blockChain
        let f = [BlockFacts](unsafeUninitializedCapacity: kinds.count) { out, initialized in
            for b in 0..<kinds.count {
                let walks = kinds[b] == .fallThrough && continues[b]
                (out.baseAddress! + b).initialize(to: BlockFacts(chain: blockChain[b], flags: (walks ? 1 : 0) | (continues[b] ? 2 : 0), count: counts[b]))
            }
            initialized = kinds.count
        }
        classifier = AddressClassifier(program: program)
        scratch = Scratch(facts: f, chains: chains.count)
        hot = Hot(facts: scratch.facts.baseAddress!, outsideEntries: scratch.outsideEntries.baseAddress!,
                  runs: scratch.runs, firsts: scratch.firsts, lasts: scratch.lasts, repeats: scratch.repeats)
    }

    static let classMisaligned: Int32 = -1
    static let classExcluded: Int32 = -2
    static let classForeign: Int32 = -3
    /// Addresses outside the analysed code, already counted by class
    /// (`AddressClassifier.classify(_:into:)`): the code was left.
    static let classLeave: Int32 = -4

    /// Makes room for the sequence of a trace of `n` addresses at once: grown by doubling,
    /// its arrays were copied over and over, and every copy touched fresh pages (a third
    /// of the resolver's time on a long trace). About as many runs and segment entries as
    /// addresses at most (an address enters a block, and rarely runs on through more; a
    /// segment of several blocks takes two entries, but also several addresses mostly),
    /// and pages not written are never touched.
    mutating func reserve(forAddresses n: UInt64) {
        guard collectRuns else { return }
        let k = Int(min(n, 1 << 27))
        chainRuns.reserveCapacity(k)
        segments.reserveCapacity(k)
    }

    /// Adds a batch of addresses.
    mutating func add(_ pcs: UnsafeBufferPointer<UInt64>) {
        for pc in pcs { add(pc) }
    }

    @inline(__always)
    mutating func add(_ pc: UInt64) {
        let v = classifier.classify(pc, counting: &stats)
        if v != AddressClassifier.skip { addClassified(v) }
    }

    /// Adds what an `AddressClassifier` made of a batch of addresses, and the counts it kept
    /// (addresses read, rep-string iterations folded) for them.
    mutating func addClassified(_ vs: UnsafeBufferPointer<Int32>, counts: ProfileStats) {
        stats.addClassified(counts)
        var h = hot
        for i in 0..<vs.count {
            let v = vs[i]
            if v <= AddressClassifier.repeatBase && AddressClassifier.repeatPeriod(v) > 1 {
                // On a copy: given out of line, the loop's own state stayed in memory.
                var copy = h
                addLoop(vs, at: i, &copy)
                h = copy
                continue
            }
            addClassified(v, &h)
        }
        hot = h
    }

    /// One address, classified: a block (with `AddressClassifier.atStart` when the address
    /// is the block's first) or a negative class.
    @inline(__always)
    mutating func addClassified(_ v: Int32) {
        var h = hot
        addClassified(v, &h)
        hot = h
    }

    @inline(__always)
    private mutating func addClassified(_ v: Int32, _ h: inout Hot) {
        guard v >= 0 else {
            if v <= AddressClassifier.repeatBase {
                addRepeats(v, &h)
                return
            }
            switch v {
            case BlockSequenceBuilder.classLeave: break
            case BlockSequenceBuilder.classMisaligned: h.misaligned += 1
            case BlockSequenceBuilder.classExcluded: h.excluded += 1
            default: h.foreign += 1
            }
            leave(&h)
            return
        }
        h.matched += 1
        let atStart = v & AddressClassifier.atStart != 0
        let b = Int(v & ~AddressClassifier.atStart)
        if b == h.current && !atStart { return }  // QEMU split the block: same execution
        // The previous translation block ran on through blocks that end without a transfer.
        if h.current >= 0 {
            var c = h.current
            while h.facts[c].flags & 1 != 0 {
                let next = c + 1
                if next == b && atStart { break }
                enter(next, &h)
                c = next
                if next == b { h.current = b; return }  // the new block continues inside it
            }
        }
        enter(b, &h)
    }

    /// More entries of the block value just added (`AddressClassifier.repeatValue`), as
    /// many calls of `addClassified` with it would add them. A block that jumps to itself
    /// (a loop of one block): after two entries its last two segments are the block
    /// alone, and each further entry only counts the block and one more repeat of the
    /// segment before the last (`appendSegment`), its chain unchanged; that is done for
    /// all of them at once. Anything else (a block that runs on into the next, a
    /// mid-block address, which QEMU's split of a block gives) goes one by one.
    @inline(never)
    private mutating func addRepeats(_ mark: Int32, _ h: inout Hot) {
        let code = UInt32(bitPattern: AddressClassifier.repeatBase &- mark)
        var k = Int(code >> 3)
        let b = h.current
        guard b >= 0 else { return }  // never: a repeat follows a block
        let v = Int32(b) | (code & 1 != 0 ? AddressClassifier.atStart : 0)
        if code & 1 == 0 {
            // Inside the block just entered: each is the same execution.
            h.matched &+= UInt64(k)
            return
        }
        if h.facts[b].flags & 1 == 0 {
            while k > 0 {
                if h.current == b {
                    let n = h.scratchSegments
                    if !collectRuns || (n >= 2 && h.firsts[n - 1] == Int32(b) && h.lasts[n - 1] == Int32(b)
                                        && h.firsts[n - 2] == Int32(b) && h.lasts[n - 2] == Int32(b) && h.repeats[n - 1] == 0) {
                        if collectRuns { h.repeats[n - 2] += k }
                        h.matched &+= UInt64(k)
                        h.blocksEntered &+= UInt64(k)
                        h.facts[b].count &+= UInt64(k)
                        return
                    }
                }
                addClassified(v, &h)
                k -= 1
            }
            return
        }
        for _ in 0..<k { addClassified(v, &h) }
    }

    /// The loop's mark at `vs[i]`: more values repeating the `p` before it
    /// (`AddressClassifier.repeatValue(_:period:atStart:)`), as many calls of
    /// `addClassified` with them would add them. When each value is a block entered at
    /// its start that ends in a transfer (so one value, one block entered) and the state
    /// is that of the pattern's last block, every period does the same: from the first
    /// value that starts a segment on, its blocks' counts, its chain transfers (totals:
    /// what is pending is passed on to `chainEdges` first) are added for all periods at
    /// once, and its segments and chain runs are written period after period without
    /// reading the facts again. The values before that first one and after the last whole
    /// period, and any other loop, go one by one.
    @inline(never)
    private mutating func addLoop(_ vs: UnsafeBufferPointer<Int32>, at i: Int, _ h: inout Hot) {
        let code = UInt32(bitPattern: AddressClassifier.repeatBase &- vs[i])
        let p = Int(code >> 1 & 3) + 1, k = Int(code >> 3)
        precondition(i >= p, "a loop's mark without its pattern")
        let start = i - p
        func value(_ j: Int) -> Int32 { vs[start + j % p] }
        func oneByOne(_ from: Int, _ to: Int) { for j in from..<to { addClassified(value(j), &h) } }
        // The pattern's blocks and chains (a mark is one a run: arrays are cheap here).
        var blocks: [Int] = [], chains: [Int32] = []
        for j in 0..<p {
            let v = value(j)
            guard v >= 0 && v & AddressClassifier.atStart != 0 else { oneByOne(0, k); return }
            let b = Int(v & ~AddressClassifier.atStart)
            guard h.facts[b].flags & 1 == 0, h.facts[b].chain >= 0 else { oneByOne(0, k); return }
            blocks.append(b)
            chains.append(h.facts[b].chain)
        }
        func block(_ j: Int) -> Int { blocks[j % p] }
        func chain(_ j: Int) -> Int32 { chains[j % p] }
        guard h.current == block(p - 1), h.lastChain == chain(p - 1), !collectRuns || Int(h.segmentEnd) == block(p - 1) else {
            oneByOne(0, k)
            return
        }
        /// Whether the `j`th block's entry extends the segment of the one before (`enter`).
        func extends(_ j: Int) -> Bool {
            let before = block(j + p - 1)
            return collectRuns && before + 1 == block(j) && h.facts[before].flags & 2 != 0
        }
        // The first value that starts a segment (one does: a loop cannot run on forward
        // only); the periods counted from it.
        var first = 0
        while first < p && extends(first) { first += 1 }
        guard first < p, k - first >= p else { oneByOne(0, k); return }
        oneByOne(0, first)
        let periods = (k - first) / p
        for b in blocks { h.facts[b].count &+= UInt64(periods) }
        h.matched &+= UInt64(periods * p)
        h.blocksEntered &+= UInt64(periods * p)
        // Transfers: the totals (only they reach the profile), what was pending first.
        var transferred = false
        for j in first..<(first + p) where chain(j) != chain(j + p - 1) {
            if !transferred { flushPending(&h) }
            transferred = true
            let key = Profile.edgeKey(chain(j + p - 1), chain(j))
            chainEdges.add(key, UInt64(periods))
            h.pendingKey = key
            h.pendingCount = 0
        }
        if collectRuns {
            let order = (first..<(first + p)).map { (block: Int32(block($0)), chain: chain($0), extends: extends($0),
                                                     transfers: chain($0) != chain($0 + p - 1)) }
            func period(_ h: inout Hot) {
                for e in order {
                    if e.extends { h.lasts[h.scratchSegments - 1] = e.block } else { appendSegment(e.block, &h) }
                    if e.transfers { appendRun(e.chain, &h) }
                }
            }
            // A period's segments and runs are written once and counted: when no segment
            // equals the next, even across the period's end, none is ever folded into the
            // one before, and every period writes the same. The first and last periods
            // are written out, so that the segments before and after compare as they would.
            var segments: [(Int32, Int32)] = []
            for e in order { if e.extends { segments[segments.count - 1].1 = e.block } else { segments.append((e.block, e.block)) } }
            let runs = order.filter(\.transfers).count
            let q = segments.count
            if periods >= 3 && q >= 2 && (0..<q).allSatisfy({ segments[$0] != segments[($0 + 1) % q] }) {
                period(&h)
                appendLoopSegments(length: q, periods: periods - 2, &h)
                if runs > 0 { appendRun(Profile.loopEntry(periods: periods - 2, length: runs), &h) }
                period(&h)
            } else {
                for _ in 0..<periods { period(&h) }
            }
        }
        let end = first + periods * p
        h.current = block(end - 1)
        h.lastChain = chain(end - 1)
        if collectRuns { h.segmentEnd = Int32(block(end - 1)) }
        oneByOne(end, k)
    }

    @inline(__always)
    private mutating func enter(_ b: Int, _ h: inout Hot) {
        h.current = b
        let facts = h.facts
        facts[b].count &+= 1
        h.blocksEntered += 1
        let fb = facts[b]
        if collectRuns {
            if h.segmentEnd >= 0 && Int(h.segmentEnd) + 1 == b && facts[Int(h.segmentEnd)].flags & 2 != 0 {
                h.lasts[h.scratchSegments - 1] = Int32(b)  // the last segment stays in scratch
            } else {
                appendSegment(Int32(b), &h)
            }
            h.segmentEnd = Int32(b)
        }
        let c = fb.chain
        if c != h.lastChain {
            if h.lastChain >= 0 {
                let key = Profile.edgeKey(h.lastChain, c)
                if key == h.pendingKey {
                    h.pendingCount += 1
                } else {
                    flushPending(&h)
                    h.pendingKey = key
                    h.pendingCount = 1
                }
            } else {
                h.outsideEntries[Int(c)] &+= 1
            }
            if collectRuns { appendRun(c, &h) }
            h.lastChain = c
        }
    }

    @inline(__always)
    private mutating func flushPending(_ h: inout Hot) {
        if h.pendingCount > 0 { chainEdges.add(h.pendingKey, h.pendingCount) }
        h.pendingCount = 0
    }

    @inline(__always)
    private mutating func leave(_ h: inout Hot) {
        h.current = -1
        if collectRuns, h.segmentEnd != -1 {
            appendSegment(-1, &h)
            h.segmentEnd = -1
        }
        if h.lastChain != -1 {
            if collectRuns { appendRun(-1, &h) }
            h.lastChain = -1
        }
    }

    /// Starts a new segment at `b`: the last one is complete, and when it repeats the one
    /// before it, that one's count of repeats goes up instead (the last two segments stay
    /// in scratch when it is flushed, so the one before is always there to compare).
    @inline(__always)
    private mutating func appendSegment(_ b: Int32, _ h: inout Hot) {
        var n = h.scratchSegments
        if n >= 2 && h.firsts[n - 1] == h.firsts[n - 2] && h.lasts[n - 1] == h.lasts[n - 2] {
            h.repeats[n - 2] += 1
            n -= 1
        } else if n == Scratch.capacity {
            h.scratchSegments = n
            flushScratch(&h)
            n = h.scratchSegments
        }
        h.firsts[n] = b
        h.lasts[n] = b
        h.repeats[n] = 0
        h.scratchSegments = n + 1
    }

    /// A loop's mark among the scratch segments: the last `length` ran `periods` more
    /// times (`Profile.loopEntry`). A first of `Int32.min` tells it from a segment, so it
    /// never equals one.
    private mutating func appendLoopSegments(length q: Int, periods k: Int, _ h: inout Hot) {
        precondition(k <= Profile.maxLoops)
        if h.scratchSegments == Scratch.capacity { flushScratch(&h) }
        let n = h.scratchSegments
        h.firsts[n] = Int32.min
        h.lasts[n] = Int32(q)
        h.repeats[n] = k
        h.scratchSegments = n + 1
    }

    @inline(__always)
    private mutating func appendRun(_ c: Int32, _ h: inout Hot) {
        if h.scratchRuns == Scratch.capacity { flushScratch(&h) }
        h.runs[h.scratchRuns] = c
        h.scratchRuns += 1
    }

    /// Moves the scratch runs and segments to the arrays; all but the last two segments
    /// while reading (`keepingLast`): the next block may still extend the last, and the
    /// last may turn out to repeat the one before. At the end, everything, the last
    /// folded into the one before when it repeats it.
    @inline(never)
    private mutating func flushScratch(_ h: inout Hot, keepingLast: Bool = true) {
        var scratchSegments = h.scratchSegments
        chainRuns.append(contentsOf: UnsafeBufferPointer(start: scratch.runs, count: h.scratchRuns))
        h.scratchRuns = 0
        let firsts = scratch.firsts, lasts = scratch.lasts, repeats = scratch.repeats
        if !keepingLast, scratchSegments >= 2, firsts[scratchSegments - 1] == firsts[scratchSegments - 2],
           lasts[scratchSegments - 1] == lasts[scratchSegments - 2] {
            repeats[scratchSegments - 2] += 1
            scratchSegments -= 1
        }
        let moved = keepingLast ? max(scratchSegments - 2, 0) : scratchSegments
        var n = 0
        for i in 0..<moved {
            let f = firsts[i], l = lasts[i], k = repeats[i]
            if f == Int32.min {
                scratch.encoded[n] = Profile.loopEntry(periods: k, length: Int(l))
                n += 1
                continue
            }
            if k > Profile.maxRepeats {
                // A run too long for one entry: the encoded stretch so far, then this one.
                segments.append(contentsOf: UnsafeBufferPointer(start: scratch.encoded, count: n))
                n = 0
                Profile.appendSegment(f, l, repeats: k, to: &segments)
                continue
            }
            if f == l {
                scratch.encoded[n] = f
                n += 1
            } else {
                scratch.encoded[n] = -2 - f
                scratch.encoded[n + 1] = l
                n += 2
            }
            if k > 0 {
                scratch.encoded[n] = Profile.repeatMark | Int32(k)
                n += 1
            }
        }
        segments.append(contentsOf: UnsafeBufferPointer(start: scratch.encoded, count: n))
        for i in moved..<scratchSegments {
            firsts[i - moved] = firsts[i]
            lasts[i - moved] = lasts[i]
            repeats[i - moved] = repeats[i]
        }
        h.scratchSegments = scratchSegments - moved
    }

    /// Stores what was accumulated into the profile.
    mutating func finish() {
        var h = hot
        flushPending(&h)
        flushScratch(&h, keepingLast: false)
        stats.matched += h.matched
        stats.misaligned += h.misaligned
        stats.excludedSection += h.excluded
        stats.foreign += h.foreign
        stats.blocksEntered += h.blocksEntered
        (h.matched, h.misaligned, h.excluded, h.foreign, h.blocksEntered) = (0, 0, 0, 0, 0)
        hot = h
        profile.stats = stats
        profile.blockCounts = scratch.facts.map(\.count)
        profile.chainEdges = Dictionary(uniqueKeysWithValues: chainEdges.entries.map { ($0.key, $0.count) })
        var outside: [Int32: UInt64] = [:]
        for (c, n) in scratch.outsideEntries.enumerated() where n > 0 { outside[Int32(c)] = n }
        profile.outsideEntries = outside
        profile.chainRuns = chainRuns
        profile.segments = segments
    }
}

/// The half of resolving an address that needs no state but the previous address: the
/// address table's (or, outside it, the reference classification's) answer, rep-string
/// iterations folded, and whether the address starts its block. It can run on the thread
/// that reads the trace, handing `BlockSequenceBuilder.addClassified` one Int32 an address.
struct AddressClassifier {
    /// Set on a block number when the address is the block's first (the address table
    /// stores it so).
    static let atStart: Int32 = AddressTable.blockStart
    /// Returned for a rep-string iteration, which the builder does not see.
    static let skip = Int32.min

    let program: Program
    private let table: AddressTable?
    private let blockStart: [UInt64]
    private let repStrings: Set<UInt64>
    private let excluded: [ELFFile.Section]
    /// The address before the next one (a rep-string iteration repeats it).
    var lastPC: UInt64 = .max
    // Outside the address table: a direct-mapped cache, pc -> block or a negative class.
    private var cachePC: [UInt64]
    private var cacheValue: [Int32]
    private let mask: Int
    /// Every section of the image (and every block) lies in `imageLow ..< imageHigh`:
    /// an address outside is foreign without a look anywhere. On a kernel's boot most
    /// addresses are (firmware, user space).
    private let imageLow: UInt64
    private let imageHigh: UInt64
    /// The span of the image's allocated sections: every address outside it is foreign
    /// to any program decoded from `elf` (its blocks and excluded sections lie in those
    /// sections; `imageLow ..< imageHigh` is this span or wider). A trace reader may
    /// collapse runs of such addresses (`TraceFile.readBatches`).
    static func foreignWindow(of elf: ELFFile) -> (low: UInt64, span: UInt64) {
        let spans = elf.sections.filter { $0.isAllocated && $0.size > 0 }
        guard let low = spans.map(\.address).min(), let high = spans.map({ $0.address &+ $0.size }).max(), high > low else {
            return (0, 0)  // nothing allocated: every address is foreign
        }
        return (low, high - low)
    }

    init(program: Program) {
        self.program = program
        table = program.addressTable
        blockStart = program.blockStart
        repStrings = program.repStringAddresses
        excluded = program.elf.sections.filter { program.excludedSections.contains($0.name) }
        let spans = program.elf.sections.filter { ($0.isAllocated || program.excludedSections.contains($0.name)) && $0.size > 0 }
        imageLow = min(spans.map(\.address).min() ?? .max, program.blockStart.first ?? .max)
        imageHigh = max(spans.map { $0.address &+ $0.size }.max() ?? 0, (program.blockStart.last ?? 0) &+ 4096)
        let size = 1 << 16
        cachePC = [UInt64](repeating: .max, count: size)
        cacheValue = [Int32](repeating: 0, count: size)
        mask = size - 1
    }

    /// The reference classification: binary searches over blocks and sections.
    func classify(_ pc: UInt64) -> Int32 {
        if let b = program.block(containing: pc) {
            return program.isInstructionStart(pc) ? Int32(b) : BlockSequenceBuilder.classMisaligned
        }
        if excluded.contains(where: { $0.contains(pc) }) { return BlockSequenceBuilder.classExcluded }
        if let s = program.elf.section(containing: pc), s.isExecutable, program.analysedSections.contains(s.name) {
            return BlockSequenceBuilder.classMisaligned  // padding or undecoded bytes
        }
        return BlockSequenceBuilder.classForeign
    }

    /// Classifies a batch into `out` (replaced), rep-string iterations left out. Addresses
    /// outside the analysed code are counted here by class, and each run of them is one
    /// `BlockSequenceBuilder.classLeave` in `out` (the builder leaves the code once for
    /// the run; on a kernel's boot trace two addresses in three are such). Returns the
    /// counts: addresses, rep-string iterations, and the three classes. With
    /// `collapsedRuns`, `TraceFile.collapsedRun` stands for a run of foreign addresses
    /// that the reader counted (`foreignWindow(of:)`), and is not counted again.
    ///
    /// With `repeatRuns`, a `TraceFile.repeatRun` stands for more of the address before it
    /// (`TraceFile.readBatches(_:progress:header:collapsingOutside:sink:)`). It gives what
    /// those addresses one by one would give, in one go: their counts, nothing for
    /// rep-string iterations or addresses outside the code (a leave at most), and for a
    /// block one `repeatValue(_:atStart:)`.
    mutating func classify(_ pcs: UnsafeBufferPointer<UInt64>, collapsedRuns: Bool = false, repeatRuns: Bool = false, loopRoom: Int = 0,
                           into out: inout [Int32]) -> ProfileStats {
        // `loopRoom`: how many addresses the batch's marks of loops stand for (room enough
        // when a loop's addresses are classified one by one).
        if let t = table { return classify(pcs, table: t, collapsedRuns: collapsedRuns, repeatRuns: repeatRuns, loopRoom: loopRoom, into: &out) }
        var counts = ProfileStats()
        var n = 0
        var outside = false
        let low = imageLow, span = imageHigh &- imageLow
        // Without the table every mark is expanded: room for each address it stands for.
        var room = pcs.count
        if repeatRuns { for pc in pcs where TraceFile.isRepeatRun(pc) { room += TraceFile.repeatCount(pc) } }
        out = [Int32](unsafeUninitializedCapacity: room) { buf, count in
            func one(_ pc: UInt64) {
                if pc &- low >= span {
                    // Outside the image: what `classify(_:counting:)` would say, sooner.
                    lastPC = pc
                    if !(collapsedRuns && pc == TraceFile.collapsedRun) {
                        counts.addresses += 1
                        counts.foreign += 1
                    }
                    if !outside {
                        buf[n] = BlockSequenceBuilder.classLeave
                        n += 1
                        outside = true
                    }
                    return
                }
                let v = classify(pc, counting: &counts)
                if v >= 0 {
                    buf[n] = v
                    n += 1
                    outside = false
                    return
                }
                if v == AddressClassifier.skip { return }
                AddressClassifier.count(v, misaligned: &counts.misaligned, excluded: &counts.excludedSection, foreign: &counts.foreign)
                if !outside {
                    buf[n] = BlockSequenceBuilder.classLeave
                    n += 1
                    outside = true
                }
            }
            for i in 0..<pcs.count {
                let pc = pcs[i]
                if repeatRuns && TraceFile.isRepeatRun(pc) {
                    // Without the table (a rare image), the addresses one by one.
                    let p = TraceFile.repeatPeriod(pc), k = TraceFile.repeatCount(pc)
                    precondition(i >= p, "a repeat mark without its pattern")
                    for j in 0..<k { one(pcs[i - p + j % p]) }
                    continue
                }
                one(pc)
            }
            count = n
        }
        return counts
    }

    /// The same with the address table: every address inside the image lies in its range
    /// (`classify(_:counting:)`), so the loop reads the table alone, with the table, the
    /// last address and the counts in locals (read through `self`, they were loaded again
    /// after every store to the output, which might have written them as far as the
    /// compiler knew). A `repeatRun` of one address gives what its addresses one by one
    /// would give, at once: their counts, nothing for rep-string iterations or addresses
    /// outside the code (a leave at most), one `repeatValue(_:period:atStart:)` for a block;
    /// one of a loop goes to `repeatedLoop`, on a copy of the state.
    private mutating func classify(_ pcs: UnsafeBufferPointer<UInt64>, table t: AddressTable, collapsedRuns: Bool, repeatRuns: Bool,
                                   loopRoom: Int, into out: inout [Int32]) -> ProfileStats {
        var addresses: UInt64 = 0, foreign: UInt64 = 0, repIterations: UInt64 = 0
        var misaligned: UInt64 = 0, excluded: UInt64 = 0
        var n = 0
        var outside = false
        var last = lastPC
        let low = imageLow, span = imageHigh &- imageLow
        let base = t.base, tableSpan = UInt64(t.span)
        // Expanding a loop's mark (rare) may need room beyond an entry an address.
        out = [Int32](unsafeUninitializedCapacity: pcs.count + loopRoom) { buf, count in
            t.classes.withUnsafeBufferPointer { classes in
                for i in 0..<pcs.count {
                    let pc = pcs[i]
                    var v: Int32
                    if pc &- low >= span || pc &- base >= tableSpan {
                        if repeatRuns && TraceFile.isRepeatRun(pc) && TraceFile.repeatPeriod(pc) > 1 {
                            // A loop (rare): out of line, on a copy of the state.
                            var st = TableRun(addresses: addresses, foreign: foreign, repIterations: repIterations,
                                              misaligned: misaligned, excluded: excluded, n: n, outside: outside, last: last,
                                              low: low, span: span, base: base, tableSpan: tableSpan, collapsedRuns: collapsedRuns)
                            AddressClassifier.repeatedLoop(pcs, at: i, &st, buf.baseAddress!, classes)
                            (addresses, foreign, repIterations, misaligned, excluded) = (st.addresses, st.foreign, st.repIterations, st.misaligned, st.excluded)
                            (n, outside, last) = (st.n, st.outside, st.last)
                            continue
                        }
                        if repeatRuns && TraceFile.isRepeatRun(pc) {
                            // `last` again (`repeatRun` lies outside every image): what
                            // each of them would give, at once.
                            let k = pc & 0xffff_ffff
                            addresses += k
                            if last &- low >= span || last &- base >= tableSpan {
                                foreign += k
                            } else {
                                guard let c = AddressTable.entry(classes[Int(last &- base)], at: last, after: last) else {
                                    repIterations += k
                                    continue
                                }
                                if c >= 0 {
                                    buf[n] = AddressClassifier.repeatValue(k, period: 1, atStart: c & AddressClassifier.atStart != 0)
                                    n += 1
                                    outside = false
                                    continue
                                }
                                AddressClassifier.count(c, times: k, misaligned: &misaligned, excluded: &excluded, foreign: &foreign)
                            }
                            if !outside {
                                buf[n] = BlockSequenceBuilder.classLeave
                                n += 1
                                outside = true
                            }
                            continue
                        }
                        // Outside the image (the table's range holds all of it that is code):
                        // foreign.
                        last = pc
                        if !(collapsedRuns && pc == TraceFile.collapsedRun) {
                            addresses += 1
                            foreign += 1
                        }
                        v = BlockSequenceBuilder.classForeign
                    } else {
                        addresses += 1
                        guard let c = AddressTable.entry(classes[Int(pc &- base)], at: pc, after: last) else {
                            repIterations += 1
                            continue
                        }
                        v = c
                        last = pc
                        if v >= 0 {
                            buf[n] = v
                            n += 1
                            outside = false
                            continue
                        }
                        AddressClassifier.count(v, misaligned: &misaligned, excluded: &excluded, foreign: &foreign)
                    }
                    if !outside {
                        buf[n] = BlockSequenceBuilder.classLeave
                        n += 1
                        outside = true
                    }
                }
            }
            count = n
        }
        lastPC = last
        var counts = ProfileStats()
        counts.addresses = addresses
        counts.foreign = foreign
        counts.repIterations = repIterations
        counts.misaligned = misaligned
        counts.excludedSection = excluded
        return counts
    }

    /// The table loop's state, for a loop's mark out of line (`repeatedLoop`).
    struct TableRun {
        var addresses: UInt64 = 0, foreign: UInt64 = 0, repIterations: UInt64 = 0
        var misaligned: UInt64 = 0, excluded: UInt64 = 0
        var n = 0
        var outside = false
        var last: UInt64
        let low: UInt64, span: UInt64, base: UInt64, tableSpan: UInt64
        let collapsedRuns: Bool
    }

    /// One address through the table.
    @inline(__always)
    static func step(_ pc: UInt64, _ st: inout TableRun, _ buf: UnsafeMutablePointer<Int32>, _ classes: UnsafeBufferPointer<Int32>) {
        var v: Int32
        if pc &- st.low >= st.span || pc &- st.base >= st.tableSpan {
            // Outside the image (the table's range holds all of it that is code): foreign.
            st.last = pc
            if !(st.collapsedRuns && pc == TraceFile.collapsedRun) {
                st.addresses += 1
                st.foreign += 1
            }
            v = BlockSequenceBuilder.classForeign
        } else {
            st.addresses += 1
            guard let c = AddressTable.entry(classes[Int(pc &- st.base)], at: pc, after: st.last) else {
                st.repIterations += 1
                return
            }
            v = c
            st.last = pc
            if v >= 0 {
                buf[st.n] = v
                st.n += 1
                st.outside = false
                return
            }
            AddressClassifier.count(v, misaligned: &st.misaligned, excluded: &st.excluded, foreign: &st.foreign)
        }
        if !st.outside {
            buf[st.n] = BlockSequenceBuilder.classLeave
            st.n += 1
            st.outside = true
        }
    }

    /// The `repeatRun` of a loop (2 to 4 addresses) at `pcs[i]`: one `repeatValue` when
    /// each address of the pattern is a block without a rep-string instruction at it and
    /// the pattern's values are the last written; else its addresses one by one.
    @inline(never)
    static func repeatedLoop(_ pcs: UnsafeBufferPointer<UInt64>, at i: Int, _ st: inout TableRun,
                             _ buf: UnsafeMutablePointer<Int32>, _ classes: UnsafeBufferPointer<Int32>) {
        let mark = pcs[i]
        let p = TraceFile.repeatPeriod(mark), k = TraceFile.repeatCount(mark)
        precondition(i >= p, "a repeat mark without its pattern")
        var simple = st.n >= p
        for j in 0..<p where simple {
            let a = pcs[i - p + j]
            guard a &- st.low < st.span && a &- st.base < st.tableSpan else { simple = false; break }
            let c = classes[Int(a &- st.base)]
            simple = c >= 0 && c & AddressTable.repString == 0 && buf[st.n - p + j] == c
        }
        if simple {
            st.addresses += UInt64(k)
            buf[st.n] = AddressClassifier.repeatValue(UInt64(k), period: p, atStart: false)
            st.n += 1
            st.outside = false
            st.last = pcs[i - p + (k - 1) % p]
        } else {
            for j in 0..<k { step(pcs[i - p + j % p], &st, buf, classes) }
        }
    }

    /// Counts a negative class (not `skip`) where it belongs, `times` times.
    @inline(__always)
    static func count(_ v: Int32, times: UInt64 = 1, misaligned: inout UInt64, excluded: inout UInt64, foreign: inout UInt64) {
        switch v {
        case BlockSequenceBuilder.classMisaligned: misaligned += times
        case BlockSequenceBuilder.classExcluded: excluded += times
        default: foreign += times
        }
    }

    /// Below this, a classified value stands for `k` more entries continuing the last `p`
    /// values before it, blocks (`repeatValue(_:period:atStart:)`), which the builder
    /// takes at once.
    static let repeatBase: Int32 = -(1 << 30)

    /// `k` (below 2^27; a batch holds 2^16 addresses) more values repeating the last `p`
    /// (1 to 4) block values before, in their order; for one value, whether it has
    /// `atStart`. The last `p` values are written before it, in the same output.
    /// A `repeatValue`'s period.
    @inline(__always)
    static func repeatPeriod(_ v: Int32) -> Int { Int((UInt32(bitPattern: repeatBase &- v) >> 1) & 3) + 1 }

    @inline(__always)
    static func repeatValue(_ k: UInt64, period p: Int, atStart: Bool) -> Int32 {
        repeatBase - Int32(truncatingIfNeeded: k << 3 | UInt64(p - 1) << 1 | (atStart ? 1 : 0))
    }

    /// One address: `skip` for a rep-string iteration, else the block (with `atStart`) or
    /// a negative class. Counts the address and any folded iteration in `stats`.
    @inline(__always)
    mutating func classify(_ pc: UInt64, counting stats: inout ProfileStats) -> Int32 {
        stats.addresses += 1
        var v: Int32
        if let t = table, pc &- t.base < UInt64(t.span) {
            guard let c = AddressTable.entry(t.classes[Int(pc &- t.base)], at: pc, after: lastPC) else {
                stats.repIterations += 1
                return AddressClassifier.skip
            }
            lastPC = pc
            return c
        } else {
            // Every decoded instruction lies inside the table's range when there is one.
            if pc == lastPC && table == nil && repStrings.contains(pc) {
                stats.repIterations += 1
                return AddressClassifier.skip
            }
            if pc < imageLow || pc >= imageHigh {
                lastPC = pc
                return BlockSequenceBuilder.classForeign
            }
            let slot = Int(truncatingIfNeeded: (pc ^ (pc >> 16)) &* 0x9E3779B97F4A7C15 >> 48) & mask
            if cachePC[slot] == pc {
                v = cacheValue[slot]
            } else {
                v = classify(pc)
                cachePC[slot] = pc
                cacheValue[slot] = v
            }
        }
        lastPC = pc
        if v >= 0 && blockStart[Int(v)] == pc { v |= AddressClassifier.atStart }
        return v
    }
}

/// What every address of a program's executable range is, in one array: the block whose
/// instruction starts there (with `repString` set for a rep-prefixed string instruction,
/// `blockStart` at the block's first address), or a negative class
/// (`BlockSequenceBuilder.classMisaligned`, `classExcluded`, `classForeign`), exactly as
/// `AddressClassifier.classify` answers. Built once per program when the range is at most
/// 64 MB (four bytes an address).
struct AddressTable: Sendable {
    static let repString: Int32 = 1 << 30
    /// Set with a block number at the block's first address.
    static let blockStart: Int32 = 1 << 29
    /// A rep-prefixed string instruction outside every block: its class plus this.
    static let repClass: Int32 = -8
    let base: UInt64
    let span: Int
    let classes: [Int32]

    /// What the table's entry `v` for `pc` says after the address `last`: nil when `pc`
    /// repeats a rep-prefixed string instruction (an iteration QEMU logged again), else
    /// the block (with `blockStart`) or class, the rep marks taken off.
    @inline(__always)
    static func entry(_ v: Int32, at pc: UInt64, after last: UInt64) -> Int32? {
        if v >= 0 {
            if v & repString != 0 { return pc == last ? nil : v & ~repString }
            return v
        }
        if v <= repClass { return pc == last ? nil : v - repClass }
        return v
    }

    init?(program p: Program) {
        let elf = p.elf
        let exec = elf.sections.filter { $0.isAllocated && $0.size > 0 && $0.isExecutable }
        guard p.blockCount > 0, p.blockCount < Int(AddressTable.blockStart), !exec.isEmpty else { return nil }
        var lo = exec.map(\.address).min()!, hi = exec.map { $0.address &+ $0.size }.max()!
        lo = min(lo, p.blockStart.first!)
        hi = max(hi, p.blockStart.last! + UInt64(p.blockSize.last!))
        guard hi > lo, hi - lo <= 64 << 20 else { return nil }
        base = lo
        span = Int(hi - lo)
        var t = [Int32](repeating: BlockSequenceBuilder.classForeign, count: span)
        t.withUnsafeMutableBufferPointer { t in
            func fill(_ s: ELFFile.Section, _ v: Int32) {
                let a = max(s.address, lo), b = min(s.address &+ s.size, hi)
                guard a < b else { return }
                UnsafeMutableBufferPointer(rebasing: t[Int(a - lo)..<Int(b - lo)]).update(repeating: v)
            }
            // The first allocated section holding an address decides its class: fill the
            // others first, so earlier sections overwrite later ones.
            for s in elf.sections.reversed() where s.isAllocated && s.size > 0 {
                fill(s, s.isExecutable && p.analysedSections.contains(s.name) ? BlockSequenceBuilder.classMisaligned : BlockSequenceBuilder.classForeign)
            }
            for s in elf.sections where p.excludedSections.contains(s.name) { fill(s, BlockSequenceBuilder.classExcluded) }
            // Rep-prefixed string instructions outside blocks keep their class, marked.
            for a in p.repStringAddresses where a >= lo && a < hi { t[Int(a - lo)] += AddressTable.repClass }
            // Instruction starts name their block (the blocks partition the instructions;
            // the program's arrays are read into locals: a class's arrays read in the loop
            // checked exclusive access each time).
            let starts = p.instructionStarts, blockStart = p.blockStart
            let firstInstruction = p.blockFirstInstruction, instructionCount = p.blockInstructionCount
            for b in 0..<blockStart.count {
                let first = Int(firstInstruction[b])
                for i in first..<(first + Int(instructionCount[b])) {
                    let a = starts[i]
                    guard a >= lo && a < hi else { continue }
                    t[Int(a - lo)] = Int32(b) | (i == first ? AddressTable.blockStart : 0)
                }
            }
            // Rep-prefixed string instructions inside blocks: their block, marked.
            for a in p.repStringAddresses where a >= lo && a < hi && t[Int(a - lo)] >= 0 { t[Int(a - lo)] |= AddressTable.repString }
        }
        classes = t
    }
}
