/// What the coalescer treats as its smallest unit.
public enum Granularity: String, Sendable, CaseIterable, Codable {
    /// The paper's chains: blocks that must stay contiguous (fall-through, call→return site).
    case block
    /// Each whole function (plus what falls into it) is one chain: coarser, but what a
    /// linker script can express.
    case function
}

/// Chains: runs of consecutive blocks that must stay contiguous in memory, because one
/// falls through into the next or a call returns into it. Each chain is a contiguous
/// range of block indices.
public struct Chains: Sendable {
    public let granularity: Granularity
    public let firstBlock: [Int32]
    public let blockCount: [Int32]
    public let blockChain: [Int32]
    /// Original instruction bytes of each chain.
    public let bytes: [Int32]

    public var count: Int { firstBlock.count }

    public func blocks(of c: Int) -> Range<Int> {
        Int(firstBlock[c])..<Int(firstBlock[c] + blockCount[c])
    }

    public init(program p: Program, granularity: Granularity) {
        self.granularity = granularity
        var first: [Int32] = []
        var counts: [Int32] = []
        var bytes: [Int32] = []
        var blockChain = [Int32](repeating: 0, count: p.blockCount)
        for b in 0..<p.blockCount {
            let joins = b > 0 && (p.blockContinues[b - 1] ||
                (granularity == .function && p.blockFunction[b - 1] == p.blockFunction[b]))
            if !joins {
                first.append(Int32(b))
                counts.append(0)
                bytes.append(0)
            }
            let c = first.count - 1
            counts[c] += 1
            bytes[c] += Int32(p.blockSize[b])
            blockChain[b] = Int32(c)
        }
        self.firstBlock = first
        self.blockCount = counts
        self.blockChain = blockChain
        self.bytes = bytes
    }

    /// Chain-level view used by tests and synthetic graphs.
    public init(granularity: Granularity, firstBlock: [Int32], blockCount: [Int32], blockChain: [Int32], bytes: [Int32]) {
        self.granularity = granularity
        self.firstBlock = firstBlock
        self.blockCount = blockCount
        self.blockChain = blockChain
        self.bytes = bytes
    }
}
