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
    public internal(set) var chainRuns: [Int32] = []
    /// Entries into each chain straight from outside the analysed code (the program's
    /// start, a return from user space), which no edge records.
    public internal(set) var outsideEntries: [Int32: UInt64] = [:]
    /// Straight-line stretches of execution: blocks `segmentFirst[i] ... segmentLast[i]`
    /// ran one after the other in memory order. What demand paging of the original layout
    /// is replayed from.
    public internal(set) var segmentFirst: [Int32] = []
    public internal(set) var segmentLast: [Int32] = []
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
        self.chainRuns = chainRuns
        self.chainEdges = chainEdges
    }

    public static func edgeKey(_ from: Int32, _ to: Int32) -> UInt64 { UInt64(UInt32(bitPattern: from)) << 32 | UInt64(UInt32(bitPattern: to)) }
}

/// Turns a stream of translation-block start addresses into block entries: looks each
/// address up, walks fall-throughs that one translation block spans, folds QEMU's
/// per-iteration logging of rep-prefixed string instructions, and records chain runs,
/// chain transfers and address statistics. Everything accumulates in the builder's own
/// storage (this loop sees every line of a gigabyte log) and lands in the profile at
/// `finish()`.
struct BlockSequenceBuilder {
    let program: Program
    let profile: Profile
    let collectRuns: Bool
    // The program's arrays, held directly so the loop does not go through the class.
    private let blockStart: [UInt64]
    private let blockKind: [TransferKind]
    private let blockContinues: [Bool]
    private let blockChain: [Int32]
    private let repStrings: Set<UInt64>
    private var current = -1
    private var lastChain: Int32 = -2
    private var lastPC: UInt64 = .max
    // Direct-mapped cache: pc -> block (or a negative class code).
    private var cachePC: [UInt64]
    private var cacheValue: [Int32]
    private let mask: Int
    private let excluded: [ELFFile.Section]
    // Results.
    private var stats = ProfileStats()
    private var blockCounts: [UInt64]
    private var chainEdges: [UInt64: UInt64] = [:]
    private var outsideEntries: [Int32: UInt64] = [:]
    private var chainRuns: [Int32] = []
    private var segmentFirst: [Int32] = []
    private var segmentLast: [Int32] = []
    // The last chain transfer and its count, folded into `chainEdges` when it changes:
    // loops repeat the same transfer many times in a row.
    private var pendingKey: UInt64 = .max
    private var pendingCount: UInt64 = 0

    init(program: Program, chains: Chains, profile: Profile) {
        self.program = program
        self.profile = profile
        self.collectRuns = profile.hasSequence
        blockStart = program.blockStart
        blockKind = program.blockKind
        blockContinues = program.blockContinues
        blockChain = chains.blockChain
        repStrings = program.repStringAddresses
        let size = 1 << 16
        cachePC = [UInt64](repeating: .max, count: size)
        cacheValue = [Int32](repeating: 0, count: size)
        mask = size - 1
        excluded = program.elf.sections.filter { program.excludedSections.contains($0.name) }
        blockCounts = profile.blockCounts
    }

    static let classMisaligned: Int32 = -1
    static let classExcluded: Int32 = -2
    static let classForeign: Int32 = -3

    private func classify(_ pc: UInt64) -> Int32 {
        if let b = program.block(containing: pc) {
            return program.isInstructionStart(pc) ? Int32(b) : BlockSequenceBuilder.classMisaligned
        }
        if excluded.contains(where: { $0.contains(pc) }) { return BlockSequenceBuilder.classExcluded }
        if let s = program.elf.section(containing: pc), s.isExecutable, program.analysedSections.contains(s.name) {
            return BlockSequenceBuilder.classMisaligned  // padding or undecoded bytes
        }
        return BlockSequenceBuilder.classForeign
    }

    /// Adds a batch of addresses.
    mutating func add(_ pcs: UnsafeBufferPointer<UInt64>) {
        for pc in pcs { add(pc) }
    }

    @inline(__always)
    mutating func add(_ pc: UInt64) {
        stats.addresses += 1
        if pc == lastPC && repStrings.contains(pc) {
            stats.repIterations += 1
            return
        }
        lastPC = pc
        let slot = Int(truncatingIfNeeded: (pc ^ (pc >> 16)) &* 0x9E3779B97F4A7C15 >> 48) & mask
        let v: Int32
        if cachePC[slot] == pc {
            v = cacheValue[slot]
        } else {
            v = classify(pc)
            cachePC[slot] = pc
            cacheValue[slot] = v
        }
        guard v >= 0 else {
            switch v {
            case BlockSequenceBuilder.classMisaligned: stats.misaligned += 1
            case BlockSequenceBuilder.classExcluded: stats.excludedSection += 1
            default: stats.foreign += 1
            }
            leave()
            return
        }
        stats.matched += 1
        let b = Int(v)
        let atStart = blockStart[b] == pc
        if b == current && !atStart { return }  // QEMU split the block: same execution
        // The previous translation block ran on through blocks that end without a transfer.
        if current >= 0 {
            var c = current
            while blockKind[c] == .fallThrough && blockContinues[c] {
                let next = c + 1
                if next == b && atStart { break }
                enter(next)
                c = next
                if next == b { current = b; return }  // the new block continues inside it
            }
        }
        enter(b)
    }

    @inline(__always)
    private mutating func enter(_ b: Int) {
        current = b
        blockCounts[b] &+= 1
        stats.blocksEntered += 1
        if collectRuns {
            if let last = segmentLast.last, last >= 0, Int(last) + 1 == b, blockContinues[Int(last)] {
                segmentLast[segmentLast.count - 1] = Int32(b)
            } else {
                segmentFirst.append(Int32(b))
                segmentLast.append(Int32(b))
            }
        }
        let c = blockChain[b]
        if c != lastChain {
            if lastChain >= 0 {
                let key = Profile.edgeKey(lastChain, c)
                if key == pendingKey {
                    pendingCount += 1
                } else {
                    flushPending()
                    pendingKey = key
                    pendingCount = 1
                }
            } else {
                outsideEntries[c, default: 0] += 1
            }
            if collectRuns { chainRuns.append(c) }
            lastChain = c
        }
    }

    private mutating func flushPending() {
        if pendingCount > 0 { chainEdges[pendingKey, default: 0] += pendingCount }
        pendingCount = 0
    }

    private mutating func leave() {
        current = -1
        if collectRuns, segmentFirst.last != -1 {
            segmentFirst.append(-1)
            segmentLast.append(-1)
        }
        if lastChain != -1 {
            if collectRuns { chainRuns.append(-1) }
            lastChain = -1
        }
    }

    /// Stores what was accumulated into the profile.
    mutating func finish() {
        flushPending()
        profile.stats = stats
        profile.blockCounts = blockCounts
        profile.chainEdges = chainEdges
        profile.outsideEntries = outsideEntries
        profile.chainRuns = chainRuns
        profile.segmentFirst = segmentFirst
        profile.segmentLast = segmentLast
    }
}
