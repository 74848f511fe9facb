import Foundation
@testable import OvlCore

// The profile reader's block-sequence builder as it was before its address table and flat
// counters (2026-12-01): a direct-mapped cache in front of binary searches, Swift
// dictionaries for transfers and outside entries. Kept here, unchanged but for its name,
// as the oracle the fast builder must equal on every sample trace and the Linux extract
// (`ProfileEquivalenceTests`).

struct ReferenceBlockSequenceBuilder {
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
            return program.isInstructionStart(pc) ? Int32(b) : ReferenceBlockSequenceBuilder.classMisaligned
        }
        if excluded.contains(where: { $0.contains(pc) }) { return ReferenceBlockSequenceBuilder.classExcluded }
        if let s = program.elf.section(containing: pc), s.isExecutable, program.analysedSections.contains(s.name) {
            return ReferenceBlockSequenceBuilder.classMisaligned  // padding or undecoded bytes
        }
        return ReferenceBlockSequenceBuilder.classForeign
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
            case ReferenceBlockSequenceBuilder.classMisaligned: stats.misaligned += 1
            case ReferenceBlockSequenceBuilder.classExcluded: stats.excludedSection += 1
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
        profile.segments = Profile.encodeSegments(first: segmentFirst, last: segmentLast)
    }
}
