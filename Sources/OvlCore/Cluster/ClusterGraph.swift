import Foundation

/// The paper's cluster graph before coalescing: one node per chain, an undirected edge
/// between two chains when control passes between them, weighted by how often it did
/// (summed over the profiles), with the stub bytes each direction of the edge costs
/// while the two chains sit in different clusters. Built once per image and profile set;
/// the coalescer runs on it again for every γ, buffer size or core set.
public final class ClusterGraph: @unchecked Sendable {
    public let chainCount: Int
    /// Original instruction bytes of each chain.
    public let chainBytes: [Int32]
    /// Stub bytes of indirect transfers in the chain: paid wherever the chain goes.
    public let chainIndirectStubBytes: [Int32]
    /// Times the chain was entered, over all profiles.
    public let chainHeat: [UInt64]

    public let edgeA: [Int32]
    public let edgeB: [Int32]
    public let edgeWeight: [UInt64]
    /// Stub bytes of jumps a→b, jumps b→a, calls a→b and calls b→a. Jumps into core need
    /// no stub; calls always do, since their return address is in the code buffer.
    public let edgeJumpAB: [Int32]
    public let edgeJumpBA: [Int32]
    public let edgeCallAB: [Int32]
    public let edgeCallBA: [Int32]
    /// The coalescer's states before their first join for the last few core sets and
    /// buffer sizes (`Coalescer.Prepared`).
    let prepared = PreparedStates()
    /// The last run's working memory, for the next run (`CoalescerMemory`).
    let coalescerMemory = CoalescerMemory()

    /// Forgets the coalescer's kept states (benchmarks of a run from scratch; memory). The
    /// last run's working memory (`coalescerMemory`) stays: it is not a state.
    public func discardPrepared() { prepared.removeAll() }

    /// One edge as the coalescer's start reads it: its chains, weight and stub bytes in
    /// 32 bytes, so that a pass over the edges reads one array front to back.
    struct PackedEdge {
        var a: Int32
        var b: Int32
        var weight: UInt64
        var jumpAB: Int32
        var jumpBA: Int32
        var callAB: Int32
        var callBA: Int32
    }

    /// The edges in order of their lower chain, then their higher one, packed (the
    /// coalescer creates its records in this order, so that its list of weight-0 pairs
    /// needs no sorting). Found on first use: a counting sort by the lower chain, each
    /// chain's few edges then sorted by the higher. Packed because the coalescer's start
    /// reads every field of every edge in this order: through an index into the seven
    /// edge arrays, each edge whose lower chain lies far from its neighbours' cost a cache
    /// miss per array on a large graph.
    var edgesByChains: [PackedEdge] { edgeOrder.value(for: 0) ?? { let o = sortedEdges(); edgeOrder.store(o, for: 0); return o }() }
    private let edgeOrder = Memo<Int, [PackedEdge]>(capacity: 1)

    private func sortedEdges() -> [PackedEdge] {
        let m = edgeA.count
        var start = [Int](repeating: 0, count: chainCount + 1)
        for e in 0..<m { start[Int(min(edgeA[e], edgeB[e])) + 1] += 1 }
        for c in 0..<chainCount { start[c + 1] += start[c] }
        var order = [Int32](repeating: 0, count: m)
        var at = start
        for e in 0..<m {
            let c = Int(min(edgeA[e], edgeB[e]))
            order[at[c]] = Int32(e)
            at[c] += 1
        }
        let a = edgeA, b = edgeB
        for c in 0..<chainCount where start[c + 1] - start[c] > 1 {
            order[start[c]..<start[c + 1]].sort { max(a[Int($0)], b[Int($0)]) < max(a[Int($1)], b[Int($1)]) }
        }
        return order.map { e32 in
            let e = Int(e32)
            return PackedEdge(a: edgeA[e], b: edgeB[e], weight: edgeWeight[e], jumpAB: edgeJumpAB[e], jumpBA: edgeJumpBA[e],
                              callAB: edgeCallAB[e], callBA: edgeCallBA[e])
        }
    }

    /// Each chain's size with every stub it could need: its bytes, its indirect stubs, and
    /// the calls and jumps out of it over every edge. No core set makes a chain outside
    /// core larger, so only chains whose bound exceeds the buffer can be too large for it
    /// (`Coalescer.oversizeChains`). Found on first use and kept.
    var chainSizeBounds: [Int] {
        if let v = boundsMemo.value(for: 0) { return v }
        var bound = (0..<chainCount).map { Int(chainBytes[$0]) + Int(chainIndirectStubBytes[$0]) }
        for e in 0..<edgeA.count where edgeA[e] != edgeB[e] {
            bound[Int(edgeA[e])] += Int(edgeCallAB[e]) + Int(edgeJumpAB[e])
            bound[Int(edgeB[e])] += Int(edgeCallBA[e]) + Int(edgeJumpBA[e])
        }
        boundsMemo.store(bound, for: 0)
        return bound
    }
    private let boundsMemo = Memo<Int, [Int]>(capacity: 1)

    /// Edge `e` seen from its end `c`: the other end, and the stub bytes of the calls and
    /// jumps out of `c` over it and into `c`.
    @inline(__always)
    func edge(_ e: Int, from c: Int32) -> (other: Int32, callOut: Int32, jumpOut: Int32, callIn: Int32, jumpIn: Int32) {
        edgeA[e] == c
            ? (edgeB[e], edgeCallAB[e], edgeJumpAB[e], edgeCallBA[e], edgeJumpBA[e])
            : (edgeA[e], edgeCallBA[e], edgeJumpBA[e], edgeCallAB[e], edgeJumpAB[e])
    }

    /// Edges of each chain, flat: chain c's are `edges[start[c] ..< start[c + 1]]`
    /// (indices into the edge arrays). Found on first use and kept; safe from any thread.
    var chainEdgeIndex: (start: [Int32], edges: [Int32]) {
        if let v = incidenceMemo.value(for: 0) { return v }
        var start = [Int32](repeating: 0, count: chainCount + 1)
        for e in 0..<edgeA.count { start[Int(edgeA[e]) + 1] += 1; start[Int(edgeB[e]) + 1] += 1 }
        for c in 0..<chainCount { start[c + 1] += start[c] }
        var at = start
        var edges = [Int32](repeating: 0, count: 2 * edgeA.count)
        for e in 0..<edgeA.count {
            edges[Int(at[Int(edgeA[e])])] = Int32(e); at[Int(edgeA[e])] += 1
            edges[Int(at[Int(edgeB[e])])] = Int32(e); at[Int(edgeB[e])] += 1
        }
        incidenceMemo.store((start, edges), for: 0)
        return (start, edges)
    }
    private let incidenceMemo = Memo<Int, (start: [Int32], edges: [Int32])>(capacity: 1)

    public var edgeCount: Int { edgeA.count }

    public init(chainBytes: [Int32], chainIndirectStubBytes: [Int32], chainHeat: [UInt64],
                edgeA: [Int32], edgeB: [Int32], edgeWeight: [UInt64],
                edgeJumpAB: [Int32], edgeJumpBA: [Int32], edgeCallAB: [Int32], edgeCallBA: [Int32]) {
        chainCount = chainBytes.count
        self.chainBytes = chainBytes
        self.chainIndirectStubBytes = chainIndirectStubBytes
        self.chainHeat = chainHeat
        self.edgeA = edgeA
        self.edgeB = edgeB
        self.edgeWeight = edgeWeight
        self.edgeJumpAB = edgeJumpAB
        self.edgeJumpBA = edgeJumpBA
        self.edgeCallAB = edgeCallAB
        self.edgeCallBA = edgeCallBA
    }

    /// Builds the graph from a program's chains and the training profiles.
    public static func build(program p: Program, chains: Chains, profiles: [Profile]) -> ClusterGraph {
        let n = chains.count
        var indirect = [Int32](repeating: 0, count: n)
        var heat = [UInt64](repeating: 0, count: n)
        var index: [UInt64: Int] = [:]
        var ea: [Int32] = [], eb: [Int32] = [], w: [UInt64] = []
        var jab: [Int32] = [], jba: [Int32] = [], cab: [Int32] = [], cba: [Int32] = []

        func edge(_ x: Int32, _ y: Int32) -> (Int, Bool) {
            let (a, b) = x < y ? (x, y) : (y, x)
            let key = UInt64(UInt32(a)) << 32 | UInt64(UInt32(b))
            if let i = index[key] { return (i, x == a) }
            let i = ea.count
            index[key] = i
            ea.append(a); eb.append(b); w.append(0)
            jab.append(0); jba.append(0); cab.append(0); cba.append(0)
            return (i, x == a)
        }

        for b in 0..<p.blockCount {
            let kind = p.blockKind[b]
            let from = chains.blockChain[b]
            if kind.isIndirect {
                indirect[Int(from)] += Int32(StubModel.overhead(kind, length: Int(p.blockTransferLength[b])))
                if let targets = p.jumpTableTargets[Int32(b)] {
                    for t in targets where chains.blockChain[Int(t)] != from { _ = edge(from, chains.blockChain[Int(t)]) }
                }
                continue
            }
            guard kind.isDirect else { continue }
            let t = p.blockTarget[b]
            guard t >= 0 else { continue }
            let to = chains.blockChain[Int(t)]
            guard to != from else { continue }
            let cost = Int32(StubModel.overhead(kind, length: Int(p.blockTransferLength[b])))
            let (i, forward) = edge(from, to)
            if kind == .call {
                if forward { cab[i] += cost } else { cba[i] += cost }
            } else {
                if forward { jab[i] += cost } else { jba[i] += cost }
            }
        }
        for prof in profiles {
            for (key, count) in prof.chainEdges {
                let x = Int32(truncatingIfNeeded: key >> 32), y = Int32(truncatingIfNeeded: key & 0xffff_ffff)
                guard x != y, x >= 0, y >= 0, Int(x) < n, Int(y) < n else { continue }
                let (i, _) = edge(x, y)
                w[i] += count
            }
        }
        // Heat: entries into the chain's first block plus return-site entries are both
        // visible as block counts; the chain's heat is its hottest block.
        for c in 0..<n {
            var hottest: UInt64 = 0
            for b in chains.blocks(of: c) {
                var s: UInt64 = 0
                for prof in profiles { s += prof.blockCounts[b] }
                hottest = max(hottest, s)
            }
            heat[c] = hottest
        }
        return ClusterGraph(chainBytes: chains.bytes, chainIndirectStubBytes: indirect, chainHeat: heat,
                            edgeA: ea, edgeB: eb, edgeWeight: w, edgeJumpAB: jab, edgeJumpBA: jba,
                            edgeCallAB: cab, edgeCallBA: cba)
    }
}

/// The coalescer's kept states, most recently used first: the state for the present core
/// set and buffer size, and a few before it, so that unpinning what was just pinned, or
/// going back to the previous buffer size, finds its state as it was. At most four are
/// kept, and older ones only while all together stay under 256 MB (a million-chain graph
/// keeps one). Safe to use from several threads; a state, once kept, never changes.
final class PreparedStates: @unchecked Sendable {
    private var states: [Coalescer.Prepared] = []
    private let lock = NSLock()
    static let capacity = 4
    static let budget = 256 << 20

    /// The state kept for exactly `key`.
    func state(for key: Coalescer.Prepared.Key) -> Coalescer.Prepared? {
        lock.lock()
        defer { lock.unlock() }
        guard let i = states.firstIndex(where: { $0.key == key }) else { return nil }
        let p = states.remove(at: i)
        states.insert(p, at: 0)
        return p
    }

    /// The kept state of the same buffer size whose core set is the largest part of
    /// `key`'s: what `Coalescer.extend` starts from.
    func base(for key: Coalescer.Prepared.Key) -> Coalescer.Prepared? {
        lock.lock()
        let candidates = states.filter { $0.key.bufferSize == key.bufferSize && $0.key.coreChains.count == key.coreChains.count }
        lock.unlock()
        var best: Coalescer.Prepared?
        var bestCount = -1
        for p in candidates {
            var count = 0
            var within = true
            p.key.coreChains.withUnsafeBufferPointer { old in
                key.coreChains.withUnsafeBufferPointer { new in
                    for c in 0..<old.count where old[c] {
                        if !new[c] { within = false; break }
                        count += 1
                    }
                }
            }
            if within && count > bestCount { best = p; bestCount = count }
        }
        return best
    }

    func store(_ p: Coalescer.Prepared) {
        lock.lock()
        defer { lock.unlock() }
        states.removeAll { $0.key == p.key }
        states.insert(p, at: 0)
        var total = 0
        var keep = 0
        for q in states {
            total += q.bytes
            if keep > 0 && (keep >= PreparedStates.capacity || total > PreparedStates.budget) { break }
            keep += 1
        }
        states.removeSubrange(keep...)
    }

    func removeAll() {
        lock.lock()
        states.removeAll()
        lock.unlock()
    }

    var count: Int { lock.lock(); defer { lock.unlock() }; return states.count }
}

/// The working memory of one coalescer run on this graph (nodes, records, the pair table),
/// kept for the next run: at a million chains it is 150 MB, and allocated afresh for every
/// run its pages were faulted in and cleared one by one, a sixth of the run. One set is
/// kept; a run that finds it taken (two runs at once) allocates its own and frees it.
final class CoalescerMemory: @unchecked Sendable {
    struct Buffers {
        let nodeStore: UnsafeMutableRawPointer
        let records: UnsafeMutablePointer<Coalescer.Record>
        let pairs: PairTable
        let shape: PairTable.Shape

        func deallocate() {
            nodeStore.deallocate()
            records.deallocate()
            pairs.deallocate()
        }
    }
    private var kept: Buffers?
    private let lock = NSLock()

    /// The kept buffers, if there are some for a pair table of `shape`.
    func take(shape: PairTable.Shape) -> Buffers? {
        lock.lock()
        defer { lock.unlock() }
        guard let b = kept, b.shape == shape else { return nil }
        kept = nil
        return b
    }

    /// Keeps `b` for the next run, or frees it when a set is kept already.
    func give(_ b: Buffers) {
        lock.lock()
        let old = kept
        kept = b
        lock.unlock()
        old?.deallocate()
    }

    /// The memory of a kept state that was dropped (`Coalescer.Prepared`), for the next
    /// state's copy: at a million chains a new core set's state is 155 MB, copied on the
    /// other core while the first join is prepared, and into fresh memory that copy took
    /// 120-400 ms, longer than what it ran beside, where into memory already used it
    /// takes a tenth of that. One is kept.
    private var spare: Coalescer.Prepared.Memory?

    var hasSpare: Bool {
        lock.lock()
        defer { lock.unlock() }
        return spare != nil
    }

    /// The spare memory, if a copy of `source` fits in it.
    func takeSpare(fitting source: Coalescer.Prepared.Memory) -> Coalescer.Prepared.Memory? {
        lock.lock()
        defer { lock.unlock() }
        guard let s = spare, s.holds(source) else { return nil }
        spare = nil
        return s
    }

    /// Keeps `m` as the spare, freeing the one kept before.
    func giveSpare(_ m: Coalescer.Prepared.Memory) {
        lock.lock()
        let old = spare
        spare = m
        lock.unlock()
        old?.deallocate()
    }

    deinit {
        kept?.deallocate()
        spare?.deallocate()
    }
}
