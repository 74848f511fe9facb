import CHints
import Foundation

/// One step of coalescing, for the explorer's step-through view and for tests.
public struct CoalesceEvent: Sendable, Equatable {
    public enum Kind: UInt8, Sendable {
        /// Two clusters joined (Fig. 2 step 3).
        case merged
        /// A cluster joined core: its code becomes hot, memory-resident code.
        case absorbedIntoCore
        /// The edge was considered but the joined cluster would exceed its limit.
        case refused
        /// Two leftover clusters joined in defragmentation (Fig. 2 step 4).
        case defragmented
        /// A leftover cluster joined core in defragmentation (`defragment_into_core`).
        case defragmentedIntoCore
    }
    public var kind: Kind
    /// The two clusters, each named by its lowest chain; -1 is core.
    public var a: Int32
    public var b: Int32
    /// The edge weight (0 for defragmentation).
    public var weight: UInt64
    public var sizeA: Int32
    public var sizeB: Int32
    /// Size of the joined cluster (for a refusal: what it would have been).
    public var result: Int32
    /// The limit it was held to: max(a.cluster_size, b.cluster_size).
    public var limit: Int32
}

/// What the coalescer is asked to do.
public struct CoalescerParameters: Sendable, Equatable {
    /// γ in percent.
    public var gamma: Double
    public var bufferSize: Int
    /// Chains that form core before coalescing.
    public var coreChains: [Bool]
    public var defragmentIntoCore: Bool
    public var recordEvents: Bool

    public init(gamma: Double, bufferSize: Int, coreChains: [Bool], defragmentIntoCore: Bool = false, recordEvents: Bool = true) {
        self.gamma = gamma
        self.bufferSize = bufferSize
        self.coreChains = coreChains
        self.defragmentIntoCore = defragmentIntoCore
        self.recordEvents = recordEvents
    }
}

/// Where a chain ended up.
public enum ChainState: UInt8, Sendable {
    /// Core before coalescing (configured or required).
    case core
    /// Absorbed into core within γ.
    case hot
    /// Larger than the code buffer on its own: kept resident (listed, not an error).
    case oversize
    /// In an overlay cluster, loaded on demand.
    case cold
}

/// The result of Figure 2 on one configuration.
public struct Clustering: Sendable {
    /// Cluster of each chain; -1 for memory-resident chains.
    public let chainCluster: [Int32]
    public let chainState: [ChainState]
    /// Code size (instructions and stubs) of each overlay cluster, by cluster id. Cluster
    /// ids follow the address of their first chain.
    public let clusterSize: [Int32]
    /// Chains of each cluster, in address order.
    public let clusterChains: [[Int32]]
    /// Memory-resident code: core, hot and oversize chains with their stubs.
    public let residentCodeBytes: Int
    /// Core's code size before coalescing (configured and required chains, with stubs).
    public let coreBaseBytes: Int
    /// Core's cluster size: what resident code may grow to.
    public let coreLimit: Int
    public let oversizeChains: [Int32]
    public let events: [CoalesceEvent]
    public let parameters: CoalescerParameters

    public var clusterCount: Int { clusterSize.count }
}

/// Figure 2 of the paper: greedy coalescing of the cluster graph in descending edge
/// weight, core absorbing hot code up to core.code_size × (1 + γ), other clusters never
/// above the buffer size; then defragmentation of the leftovers. Code sizes follow
/// Figure 1: they include the stub bytes of transfers that leave the cluster, and are
/// recomputed as clusters join (a transfer between two joined clusters needs no stub; a
/// jump into code that joined core needs none either).
///
/// Deterministic: edges of equal weight are taken in order of their clusters' lowest
/// chains, and defragmentation picks partners by size, then by lowest chain.
///
/// The graph between clusters lives in flat memory: one record per pair of clusters that
/// share an edge (its weight and the stub bytes of each direction, one cache line), a
/// hash table from the pair to its record, and for each cluster a linked list of its
/// records' ends. Joining `d` into `s` walks `d`'s list once: a record to a cluster `z`
/// that `s` already touches adds into that record, any other is relabelled from `d` to
/// `s` and moves to `s`'s list. Records that die stay in their other end's list until a
/// walk passes them. A node is a chain's index (core is `chainCount`); a cluster is named
/// by the node at the root of its union-find tree.
public struct Coalescer {
    /// What crosses one pair of clusters, seen from one of them.
    struct Adj {
        var weight: UInt64
        var jumpOut: Int32
        var jumpIn: Int32
        var callOut: Int32
        var callIn: Int32
    }

    /// One pair of clusters: its ends, the summed weight of the edges between them, the
    /// stub bytes of jumps and calls in each direction, the links of its two ends' lists,
    /// and the round in which joining the pair was refused at its present weight.
    struct Record {
        var u: Int32
        var v: Int32
        var weight: UInt64
        var jumpUV: Int32
        var jumpVU: Int32
        var callUV: Int32
        var callVU: Int32
        var nextU: Int32
        var nextV: Int32
        var refusedRound: Int32
        /// Once the pair's clusters are the same as another record's (one side joined a
        /// cluster that the other side already touched), that record; else -1.
        var forward: Int32
    }

    /// A queue entry: the record of a pair of clusters and its weight when queued. `tie`
    /// holds the two clusters' lowest chains then (core as 0, chain c as c + 1, the lower
    /// one in the high half): the order among equal weights. The record, followed through
    /// `forward`, is the pair's present record, whose ends are the clusters that have since
    /// grown around the two; an entry whose pair joined or whose weight has grown is stale.
    struct HeapEntry {
        /// ~weight, so that the heaviest edge has the smallest key.
        var key: UInt64
        var tie: UInt64
        var record: Int32
        var weight: UInt64 { ~key }
    }

    let graph: ClusterGraph
    let params: CoalescerParameters
    let core: Int32
    let nodes: Int
    /// The nodes' fields, kept together in one 32-byte `Node` per node (a join or a
    /// question about a pair reads most of a node's fields, and at a million chains each
    /// separate array cost a cache miss of its own); each view below reads one field.
    let nodeStore: UnsafeMutableRawPointer
    let parent: NodeField<Int32>
    let size: NodeField<Int>
    /// Lowest chain of each node (names clusters in events, orders ties); -1 for core.
    let low: NodeField<Int32>
    /// Distinct neighbours of each live cluster.
    let degree: NodeField<Int32>
    /// First list slot of each node: slot 2r is record r's end u, 2r + 1 its end v; -1 ends.
    let head: NodeField<Int32>
    let records: UnsafeMutablePointer<Record>
    /// Whether the coalescer's data is too large for the caches, so that asking for lines
    /// ahead (`prefetch`, the stretches of `join`) pays; on a graph that fits they only
    /// cost instructions.
    let prefetching: Bool
    /// Scratch for `join`: the list slots of one stretch of the joining cluster's list.
    let walk: UnsafeMutablePointer<Int32>
    /// Slots of `d`'s list gathered at a time in `join`.
    let stretch: Int
    var recordCount = 0
    var pairs: PairTable
    let shape: PairTable.Shape
    /// Core's limit, core.code_size × (1 + γ); every other cluster's is the buffer size.
    var coreLimit = 0
    var round: Int32 = 0
    var events: [CoalesceEvent] = []
    var heap: [HeapEntry] = []
    /// The weighted edges at the start, heaviest first; `initialAt` is the next one.
    var initial: [HeapEntry] = []
    var initialAt = 0
    var keepPrepared = true
    /// Asked every `stopInterval` entries taken from the queue; when it answers true the
    /// run ends at once and its clustering is incomplete (`runStoppable`).
    var stop: (@Sendable () -> Bool)? = nil
    var stopped = false
    static let stopInterval = 256
    /// How `prepare` came by the state before the first join (tests check the paths).
    enum Preparation { case built, reused, extended }
    var preparation = Preparation.built

    /// Clusters `graph`. The state before the first join is taken from the graph's kept
    /// one when core and buffer size match, extended from a kept one when the core set
    /// only adds to it (`extend`), else built; `keepPrepared` keeps it for the
    /// next run (false for one-off runs such as the explorer's what-if estimates, which
    /// would only push out the state the next edit needs).
    public static func run(_ graph: ClusterGraph, _ params: CoalescerParameters, keepPrepared: Bool = true) -> Clustering {
        run(graph, params, keepPrepared: keepPrepared, pairTable: .automatic)
    }

    /// `run` that gives up when `stop` answers true (asked every `stopInterval` entries
    /// taken from the queue): the explorer's work ahead of the user's next edit, dropped
    /// when a real edit comes. Nil when it gave up; the state kept for the next run is
    /// taken before the first join, so a run that gave up leaves it whole.
    public static func runStoppable(_ graph: ClusterGraph, _ params: CoalescerParameters, keepPrepared: Bool = true,
                                    stop: @escaping @Sendable () -> Bool) -> Clustering? {
        let r = runOnce(graph, params, keepPrepared: keepPrepared, pairTable: .automatic, prefetching: nil, stop: stop)
        return r.stopped ? nil : r.clustering
    }

    static func run(_ graph: ClusterGraph, _ params: CoalescerParameters, keepPrepared: Bool, pairTable: PairTable.Shape,
                    prefetching: Bool? = nil) -> Clustering {
        runReporting(graph, params, keepPrepared: keepPrepared, pairTable: pairTable, prefetching: prefetching).clustering
    }

    /// `run`, with how the state before the first join was come by.
    static func runReporting(_ graph: ClusterGraph, _ params: CoalescerParameters, keepPrepared: Bool = true,
                             pairTable: PairTable.Shape = .automatic, prefetching: Bool? = nil) -> (clustering: Clustering, preparation: Preparation) {
        let r = runOnce(graph, params, keepPrepared: keepPrepared, pairTable: pairTable, prefetching: prefetching, stop: nil)
        return (r.clustering, r.preparation)
    }

    private static func runOnce(_ graph: ClusterGraph, _ params: CoalescerParameters, keepPrepared: Bool, pairTable: PairTable.Shape,
                                prefetching: Bool?, stop: (@Sendable () -> Bool)?) -> (clustering: Clustering, preparation: Preparation, stopped: Bool) {
        var c = Coalescer(graph: graph, params: params, pairTable: pairTable, prefetching: prefetching)
        c.keepPrepared = keepPrepared
        c.stop = stop
        defer { c.deallocate() }
        let result = c.execute()
        return (result, c.preparation, c.stopped)
    }

    /// `prefetching` forces the prefetching paths on or off (tests run both on small
    /// graphs, where they are otherwise off; with it on, `join` also walks lists in
    /// stretches of 3 slots, so that stretches end inside lists).
    init(graph: ClusterGraph, params: CoalescerParameters, pairTable: PairTable.Shape = .automatic, prefetching: Bool? = nil) {
        self.graph = graph
        self.params = params
        let n = graph.chainCount
        nodes = n + 1
        core = Int32(n)
        shape = pairTable
        if let kept = graph.coalescerMemory.take(shape: pairTable) {
            nodeStore = kept.nodeStore
            records = kept.records
            pairs = kept.pairs      // not cleared: `prepare` fills it on every path
        } else {
            nodeStore = Node.allocate(nodes)
            records = LargeMemory.allocate(max(1, graph.edgeCount), of: Record.self)
            pairs = PairTable(nodes: nodes, records: graph.edgeCount, shape: pairTable)
        }
        (parent, low, degree, head, size) = Node.fields(nodeStore)
        let forced = prefetching
        self.prefetching = forced ?? (graph.edgeCount * MemoryLayout<Record>.stride > Coalescer.prefetchAbove)
        stretch = forced == true ? 3 : 32
        walk = .allocate(capacity: stretch)
        for i in 0..<nodes { low[i] = Int32(i) }
        low[n] = -1
    }

    /// A coalescer over `memory` as it stands (a copy of a kept state, which
    /// `extendInBackground` brings up to date): nothing is initialised, and its memory is
    /// not the graph's working memory, so it is never handed back (`deallocate`).
    init(graph: ClusterGraph, params: CoalescerParameters, over memory: Prepared.Memory, shape: PairTable.Shape, prefetching: Bool, stretch: Int) {
        self.graph = graph
        self.params = params
        nodes = graph.chainCount + 1
        core = Int32(graph.chainCount)
        self.shape = shape
        nodeStore = memory.nodeStore
        records = memory.records
        pairs = memory.pairs
        recordCount = memory.recordCount
        (parent, low, degree, head, size) = Node.fields(nodeStore)
        self.prefetching = prefetching
        self.stretch = stretch
        walk = .allocate(capacity: stretch)
    }

    /// Hands the working memory back to the graph for its next run.
    func deallocate() {
        walk.deallocate()
        graph.coalescerMemory.give(CoalescerMemory.Buffers(nodeStore: nodeStore, records: records, pairs: pairs, shape: shape))
    }

    @inline(__always)
    func find(_ x0: Int32) -> Int32 {
        var x = x0
        while parent[Int(x)] != x {
            let p = parent[Int(parent[Int(x)])]
            parent[Int(x)] = p
            x = p
        }
        return x
    }

    @inline(__always)
    func pairKey(_ a: Int32, _ b: Int32) -> UInt64 { pairs.key(a, b) }

    /// The limit a join of `a` and `b` is held to: the larger of their cluster sizes.
    @inline(__always)
    func limit(_ a: Int32, _ b: Int32) -> Int {
        a == core || b == core ? max(coreLimit, params.bufferSize) : params.bufferSize
    }

    /// An entry for record `r`, the edge between clusters `a` and `b`.
    @inline(__always)
    func entry(_ weight: UInt64, _ a: Int32, _ b: Int32, _ r: Int) -> HeapEntry {
        let x = UInt64(UInt32(bitPattern: low[Int(a)] + 1)), y = UInt64(UInt32(bitPattern: low[Int(b)] + 1))
        return HeapEntry(key: ~weight, tie: min(x, y) << 32 | max(x, y), record: Int32(r))
    }

    /// `entry`, just after `initialise`: every node is then a chain, its own lowest, or
    /// core, so the tie comes from the nodes' numbers without reading the nodes (at a
    /// million chains most of those reads missed the caches).
    @inline(__always)
    func startEntry(_ weight: UInt64, _ a: Int32, _ b: Int32, _ r: Int) -> HeapEntry {
        let x = a == core ? 0 : UInt64(UInt32(bitPattern: a)) + 1, y = b == core ? 0 : UInt64(UInt32(bitPattern: b)) + 1
        return HeapEntry(key: ~weight, tie: min(x, y) << 32 | max(x, y), record: Int32(r))
    }

    /// Record `r` as seen from its end `x`.
    @inline(__always)
    func adj(_ r: Int, from x: Int32) -> Adj {
        let e = records[r]
        return e.u == x
            ? Adj(weight: e.weight, jumpOut: e.jumpUV, jumpIn: e.jumpVU, callOut: e.callUV, callIn: e.callVU)
            : Adj(weight: e.weight, jumpOut: e.jumpVU, jumpIn: e.jumpUV, callOut: e.callVU, callIn: e.callUV)
    }

    /// Adds `e` (seen from `x`) into record `r`. A heavier pair may be asked again.
    @inline(__always)
    func add(_ e: Adj, into r: Int, from x: Int32) {
        records[r].weight &+= e.weight
        if e.weight > 0 { records[r].refusedRound = -1 }
        if records[r].u == x {
            records[r].jumpUV += e.jumpOut; records[r].jumpVU += e.jumpIn
            records[r].callUV += e.callOut; records[r].callVU += e.callIn
        } else {
            records[r].jumpVU += e.jumpOut; records[r].jumpUV += e.jumpIn
            records[r].callVU += e.callOut; records[r].callUV += e.callIn
        }
    }

    /// Sizes of every node, given which chains are in core, with adjacency aggregated.
    mutating func initialise(coreMembers: [Bool]) {
        let n = graph.chainCount
        // One pass over the nodes (32 MB of them at a million chains).
        var coreBytes = 0
        graph.chainBytes.withUnsafeBufferPointer { bytes in
            graph.chainIndirectStubBytes.withUnsafeBufferPointer { indirect in
                coreMembers.withUnsafeBufferPointer { inCore in
                    for c in 0..<n {
                        let s = Int(bytes[c]) + Int(indirect[c])
                        if inCore[c] { parent[c] = core; size[c] = 0; coreBytes += s } else { parent[c] = Int32(c); size[c] = s }
                        degree[c] = 0
                        head[c] = -1
                    }
                }
            }
        }
        parent[n] = core; size[n] = coreBytes; degree[n] = 0; head[n] = -1
        recordCount = 0
        pairs.clear()
        // Sizes add up in any order; records are made in order of the edges' chains.
        let edges = graph.edgesByChains
        // Prefetching, the nodes at the ends of the edge 16 ahead are asked for, then the
        // table slot of the pair 8 ahead.
        let m = edges.count
        let ahead = prefetching ? 8 : m
        edges.withUnsafeBufferPointer { edges in
            for i in 0..<m {
                if i + 2 * ahead < m {
                    ovl_prefetch(nodeStore + Int(edges[i + 2 * ahead].a) &* Node.stride)
                    ovl_prefetch(nodeStore + Int(edges[i + 2 * ahead].b) &* Node.stride)
                }
                if i + ahead < m {
                    pairs.prefetch(pairKey(parent[Int(edges[i + ahead].a)], parent[Int(edges[i + ahead].b)]))
                }
                let edge = edges[i]
                let x = parent[Int(edge.a)], y = parent[Int(edge.b)]
                guard x != y else { continue }
                let fwd = Adj(weight: edge.weight, jumpOut: edge.jumpAB, jumpIn: edge.jumpBA, callOut: edge.callAB, callIn: edge.callBA)
                size[Int(x)] += Int(fwd.callOut) + (y == core ? 0 : Int(fwd.jumpOut))
                size[Int(y)] += Int(fwd.callIn) + (x == core ? 0 : Int(fwd.jumpIn))
                // Edges touching core repeat (several core chains): they aggregate.
                let key = pairKey(x, y)
                if let r = pairs.find(key) {
                    add(fwd, into: Int(r), from: x)
                } else {
                    let r = recordCount
                    recordCount += 1
                    records[r] = Record(u: x, v: y, weight: fwd.weight, jumpUV: fwd.jumpOut, jumpVU: fwd.jumpIn,
                                        callUV: fwd.callOut, callVU: fwd.callIn, nextU: head[Int(x)], nextV: head[Int(y)], refusedRound: -1, forward: -1)
                    head[Int(x)] = Int32(2 * r)
                    head[Int(y)] = Int32(2 * r + 1)
                    degree[Int(x)] += 1
                    degree[Int(y)] += 1
                    pairs.insert(key, Int32(r))
                }
            }
        }
    }

    /// The chains outside core (`inCore`) too large for the buffer, in chain order, with
    /// their sizes: a chain's bytes, its indirect stubs, its calls out and its jumps out to
    /// chains outside core. Only chains whose bound (`ClusterGraph.chainSizeBounds`)
    /// exceeds the buffer are looked at, each through its own edges: at a million chains a
    /// pass over every edge for the few there are cost a tenth of the run.
    func oversizeChains(_ inCore: [Bool]) -> (chains: [Int32], sizes: [Int]) {
        let g = graph
        let bounds = g.chainSizeBounds
        var chains: [Int32] = [], sizes: [Int] = []
        var incidence: (start: [Int32], edges: [Int32])? = nil
        for c in 0..<g.chainCount where bounds[c] > params.bufferSize && !inCore[c] {
            if incidence == nil { incidence = g.chainEdgeIndex }
            let (start, incident) = incidence!
            var s = Int(g.chainBytes[c]) + Int(g.chainIndirectStubBytes[c])
            for i in Int(start[c])..<Int(start[c + 1]) {
                let (y, callOut, jumpOut, _, _) = g.edge(Int(incident[i]), from: Int32(c))
                guard y != Int32(c) else { continue }
                s += Int(callOut) + (inCore[Int(y)] ? 0 : Int(jumpOut))
            }
            if s > params.bufferSize { chains.append(Int32(c)); sizes.append(s) }
        }
        return (chains, sizes)
    }

    /// Core's size with the configured chains only (step 1), from its size now that the
    /// oversize chains have joined it (`members`): less the oversize chains' bytes and
    /// their stubs out to chains outside core, plus the stubs from configured core into
    /// them, which a resident chain no longer needed.
    func configuredCoreSize(members: [Bool], oversize: [Int32]) -> Int {
        var s = size[Int(core)]
        guard !oversize.isEmpty else { return s }
        let g = graph
        let (start, incident) = g.chainEdgeIndex
        for o32 in oversize {
            let o = Int(o32)
            s -= Int(g.chainBytes[o]) + Int(g.chainIndirectStubBytes[o])
            for i in Int(start[o])..<Int(start[o + 1]) {
                let (y, callOut, jumpOut, callIn, jumpIn) = g.edge(Int(incident[i]), from: o32)
                guard y != o32 else { continue }
                if !members[Int(y)] {
                    s -= Int(callOut) + Int(jumpOut)
                } else if params.coreChains[Int(y)] {
                    s += Int(callIn) + Int(jumpIn)
                }
            }
        }
        return s
    }

    /// The state before the first join, which depends on the graph, the core chains and
    /// the buffer size but not on γ: kept on the graph (`ClusterGraph.prepared`), so that a
    /// γ edit, the explorer's commonest, starts from a copy instead of building it again.
    final class Prepared: @unchecked Sendable {
        struct Key: Equatable {
            var coreChains: [Bool]
            var bufferSize: Int
        }
        let key: Key
        let nodes: Int
        let memory: Memory
        var nodeStore: UnsafeMutableRawPointer { memory.nodeStore }
        var records: UnsafeMutablePointer<Record> { memory.records }
        var recordCount: Int { memory.recordCount }
        var pairs: PairTable { memory.pairs }
        let baseSize: Int
        let oversize: [Int32]
        /// Each oversize chain's size in step 1 (configured core only), which pins can
        /// only make smaller: `extend` checks whether it still exceeds the buffer.
        let oversizeSizes: [Int]
        let zero: [HeapEntry]
        let initial: [HeapEntry]

        /// Memory it holds, roughly.
        var bytes: Int {
            nodes * (Node.stride + 1) + recordCount * MemoryLayout<Record>.stride
                + ((pairs.mask + 1) << pairs.wide) * 8 + (zero.count + initial.count) * MemoryLayout<HeapEntry>.stride
        }

        /// A coalescer's nodes, records and pair table: its own (`init(of:)`), or a copy.
        struct Memory: @unchecked Sendable {
            let nodeStore: UnsafeMutableRawPointer
            let records: UnsafeMutablePointer<Record>
            let recordCount: Int
            /// Records `records` has room for.
            let recordCapacity: Int
            let pairs: PairTable

            /// Copies what `source` (a coalescer's memory) holds, into `spare` when it is
            /// given (the memory of a state no longer kept, of the same graph).
            init(copying source: Memory, nodes: Int, into spare: Memory? = nil) {
                if let spare {
                    nodeStore = spare.nodeStore
                    records = spare.records
                    recordCapacity = spare.recordCapacity
                    var table = spare.pairs
                    table.update(from: source.pairs)
                    pairs = table
                } else {
                    // Copies are read front to back only: plain pages (see `LargeMemory`).
                    nodeStore = Node.allocate(nodes, huge: false)
                    recordCapacity = max(source.recordCapacity, 1)
                    records = LargeMemory.allocate(recordCapacity, of: Record.self, huge: false)
                    pairs = PairTable(copying: source.pairs)
                }
                nodeStore.copyMemory(from: source.nodeStore, byteCount: nodes * Node.stride)
                records.update(from: source.records, count: source.recordCount)
                recordCount = source.recordCount
            }

            /// `c`'s own memory, not copied.
            init(of c: Coalescer) {
                nodeStore = c.nodeStore
                records = c.records
                recordCount = c.recordCount
                recordCapacity = max(c.graph.edgeCount, 1)
                pairs = c.pairs
            }

            /// Whether a copy of `source` fits in this memory.
            func holds(_ source: Memory) -> Bool {
                recordCapacity >= source.recordCount && pairs.sameShape(as: source.pairs)
            }

            func deallocate() {
                nodeStore.deallocate()
                records.deallocate()
                pairs.deallocate()
            }
        }

        /// Where this state's memory goes when it is dropped: kept for the next state's
        /// copy (see `CoalescerMemory.spare`).
        let home: CoalescerMemory

        init(_ memory: Memory, nodes: Int, home: CoalescerMemory, key: Key, baseSize: Int, oversize: [Int32], oversizeSizes: [Int], zero: [HeapEntry],
             initial: [HeapEntry]) {
            self.key = key
            self.nodes = nodes
            self.home = home
            self.memory = memory
            self.baseSize = baseSize
            self.oversize = oversize
            self.oversizeSizes = oversizeSizes
            self.zero = zero
            self.initial = initial
        }

        /// Puts this state into `c`, a coalescer of the same graph.
        func restore(into c: inout Coalescer) {
            c.nodeStore.copyMemory(from: nodeStore, byteCount: nodes * Node.stride)
            c.records.update(from: records, count: recordCount)
            c.recordCount = recordCount
            c.pairs.update(from: pairs)
            c.initial = initial
        }

        deinit { home.giveSpare(memory) }
    }

    /// Builds the state before the first join (Fig. 2 steps 1 and 2): core and the chains
    /// too large for the buffer collapsed into one node, adjacency aggregated per pair, the
    /// weighted edges sorted and the weight-0 ones listed.
    mutating func prepare() -> (baseSize: Int, oversize: [Int32], zero: [HeapEntry]) {
        let key = Prepared.Key(coreChains: params.coreChains, bufferSize: params.bufferSize)
        func fits(_ p: Prepared) -> Bool { p.nodes == nodes && p.pairs.wide == pairs.wide && p.pairs.limit == pairs.limit }
        if let p = graph.prepared.state(for: key), fits(p) {
            p.restore(into: &self)
            preparation = .reused
            return (p.baseSize, p.oversize, p.zero)
        }
        if let p = graph.prepared.base(for: key), fits(p), let r = extend(p, to: key) {
            preparation = .extended
            return r
        }
        preparation = .built
        // Step 1 (configured core only) finds the chains too large for the buffer, which
        // join core, and core's size then: the base of γ's limit.
        var members = params.coreChains
        let (oversize, oversizeSizes) = oversizeChains(members)
        for c in oversize { members[Int(c)] = true }
        initialise(coreMembers: members)
        let baseSize = configuredCoreSize(members: members, oversize: oversize)
        // Edges of weight 0 (never taken in the profile) are the most numerous and all
        // tie; they wait in a list ordered by their chains and come after every weighted
        // edge. The weighted edges known at the start come out of a sorted list.
        // The copy of the state to keep is made on another thread meanwhile, and on a graph
        // too large for the caches (`prefetching`; at a million chains each list took
        // 40-55 ms) the sorted list on a third: all three only read the records.
        final class Reader: @unchecked Sendable {
            let c: Coalescer
            init(_ c: Coalescer) { self.c = c }
        }
        let weighted = prefetching ? { let r = Reader(self); return Eventually { r.c.weightedEntries() } }() : nil
        let own = Prepared.Memory(of: self)
        let copying = keepPrepared ? Coalescer.copyInBackground(own, nodes: nodes, into: graph.coalescerMemory.takeSpare(fitting: own)) : nil
        let zero = zeroWeightEntries()
        initial = weighted?.value ?? weightedEntries()
        if let copying {
            graph.prepared.store(Prepared(copying(), nodes: nodes, home: graph.coalescerMemory, key: key, baseSize: baseSize, oversize: oversize,
                                          oversizeSizes: oversizeSizes, zero: zero, initial: initial))
        }
        return (baseSize, oversize, zero)
    }

    /// The state before the first join for `key`, from the kept state `p` of a core set
    /// that `key`'s contains (pinning, the explorer's other common edit): the added chains
    /// join core as a join would take them, and only the queue entries of the pairs they
    /// touched change. Nil when `key` drops a chain from core, or when the added chains
    /// change which chains are too large for the buffer (a neighbour's jumps into them
    /// need no stub any more); then the state is built from scratch.
    mutating func extend(_ p: Prepared, to key: Prepared.Key) -> (baseSize: Int, oversize: [Int32], zero: [HeapEntry])? {
        let n = graph.chainCount
        var added: [Int32] = []
        for c in 0..<n where key.coreChains[c] != p.key.coreChains[c] {
            guard key.coreChains[c] else { return nil }
            added.append(Int32(c))
        }
        // Step 1's figures, brought up to date through the added chains' edges only:
        // core's size (each chain's bytes and its stubs to chains outside core; stubs
        // from core into it are no longer needed), and the sizes of the oversize chains,
        // which only get smaller as their jumps into core lose their stubs. An oversize
        // chain that fits the buffer now is no longer resident: build from scratch.
        var baseSize = p.baseSize
        var inCore = p.key.coreChains
        var oversizeSize: [Int32: Int] = [:]
        for (i, c) in p.oversize.enumerated() { oversizeSize[c] = p.oversizeSizes[i] }
        let (start, incident) = graph.chainEdgeIndex
        let g = graph
        for c in added {
            baseSize += Int(g.chainBytes[Int(c)]) + Int(g.chainIndirectStubBytes[Int(c)])
            oversizeSize[c] = nil
            for i in Int(start[Int(c)])..<Int(start[Int(c) + 1]) {
                let (y, callOut, jumpOut, callIn, jumpIn) = g.edge(Int(incident[i]), from: c)
                if inCore[Int(y)] {
                    baseSize -= Int(callIn) + Int(jumpIn)
                } else {
                    baseSize += Int(callOut) + Int(jumpOut)
                    if let s = oversizeSize[y] { oversizeSize[y] = s - Int(jumpIn) }
                }
            }
            inCore[Int(c)] = true
        }
        let oversize = p.oversize.filter { !key.coreChains[Int($0)] }
        let oversizeSizes = oversize.map { oversizeSize[$0]! }
        guard oversizeSizes.allSatisfy({ $0 > params.bufferSize }) else { return nil }
        // The state to keep is made on another core meanwhile: a copy of `p`'s with the
        // same joins (the copy was half of a pin's preparation; copying this coalescer's
        // state there instead made its own first writes wait on the other core).
        let keeping = keepPrepared ? Coalescer.extendInBackground(p, added: added, graph: graph, params: params, shape: shape,
                                                                  prefetching: prefetching, stretch: stretch, nodes: nodes) : nil
        p.restore(into: &self)
        // Join the added chains into core (an oversize chain is there already), marking
        // every record they touch: theirs, and core's records that absorbed them.
        var touched: [Int32] = []
        joinIntoCore(added, touched: &touched)
        heap.removeAll(keepingCapacity: true)
        var mark = [Bool](repeating: false, count: recordCount)
        var live: [Int32] = []
        for r0 in touched {
            var r = Int(r0)
            mark[r] = true
            while records[r].u < 0, records[r].forward >= 0 { r = Int(records[r].forward); mark[r] = true }
            if records[r].u >= 0 { live.append(Int32(r)) }
        }
        // The lists less the touched pairs, then the touched pairs that live on (all of
        // them core's now) merged in: weighted ones by weight, weight-0 ones among core's
        // by the other side's chain.
        var fresh: [HeapEntry] = [], freshZero: [HeapEntry] = []
        for r32 in Set(live) {
            let r = Int(r32)
            let e = entry(records[r].weight, records[r].u, records[r].v, r)
            if records[r].weight > 0 { fresh.append(e) } else { freshZero.append(e) }
        }
        fresh.sort(by: Coalescer.before)
        freshZero.sort(by: Coalescer.before)
        initial = Coalescer.merged(p.initial.filter { !mark[Int($0.record)] }, fresh)
        let kept = p.zero.filter { !mark[Int($0.record)] }
        let coreEnd = kept.firstIndex { $0.tie >> 32 != 0 } ?? kept.count
        let zero = Coalescer.merged(Array(kept[..<coreEnd]), freshZero) + kept[coreEnd...]
        if let keeping {
            graph.prepared.store(Prepared(keeping(), nodes: nodes, home: graph.coalescerMemory, key: key, baseSize: baseSize, oversize: oversize,
                                          oversizeSizes: oversizeSizes, zero: zero, initial: initial))
        }
        return (baseSize, oversize, zero)
    }

    /// Joins into core each chain of `added` that is a cluster of its own (`extend`),
    /// listing in `touched` the records of each before it joins.
    mutating func joinIntoCore(_ added: [Int32], touched: inout [Int32]) {
        for c in added where parent[Int(c)] == c {
            var slot = head[Int(c)]
            while slot >= 0 {
                let r = Int(slot >> 1)
                touched.append(Int32(r))
                slot = slot & 1 == 0 ? records[r].nextU : records[r].nextV
            }
            let r = pairs.find(pairKey(core, c)).map { Int($0) } ?? -1
            join(core, c, merged: r >= 0 ? mergedSize(core, c, r) : size[Int(core)] + size[Int(c)])
        }
    }

    /// Starts making, on another thread, the state `extend` reaches from `p` by joining
    /// `added` into core: `p`'s memory copied (into the spare memory when it fits) and
    /// the same joins done on the copy by a coalescer of its own. The function returned
    /// waits for it.
    static func extendInBackground(_ p: Prepared, added: [Int32], graph: ClusterGraph, params: CoalescerParameters, shape: PairTable.Shape,
                                   prefetching: Bool, stretch: Int, nodes: Int) -> () -> Prepared.Memory {
        final class Result: @unchecked Sendable { var memory: Prepared.Memory? }
        struct Work: @unchecked Sendable {
            let p: Prepared, added: [Int32], graph: ClusterGraph, params: CoalescerParameters, shape: PairTable.Shape, prefetching: Bool
            let stretch: Int, nodes: Int, spare: Prepared.Memory?
        }
        let work = Work(p: p, added: added, graph: graph, params: params, shape: shape, prefetching: prefetching, stretch: stretch, nodes: nodes,
                        spare: graph.coalescerMemory.takeSpare(fitting: p.memory))
        let result = Result()
        let done = DispatchGroup()
        DispatchQueue.global(qos: .userInitiated).async(group: done) {
            let copy = Prepared.Memory(copying: work.p.memory, nodes: work.nodes, into: work.spare)
            var c = Coalescer(graph: work.graph, params: work.params, over: copy, shape: work.shape, prefetching: work.prefetching,
                              stretch: work.stretch)
            var touched: [Int32] = []
            c.joinIntoCore(work.added, touched: &touched)
            result.memory = Prepared.Memory(of: c)
            c.walk.deallocate()
        }
        return {
            done.wait()
            return result.memory!
        }
    }

    /// Starts copying `memory` on another thread; the function returned waits for the copy.
    static func copyInBackground(_ memory: Prepared.Memory, nodes: Int, into spare: Prepared.Memory?) -> () -> Prepared.Memory {
        final class Result: @unchecked Sendable { var copy: Prepared.Memory? }
        let result = Result()
        let done = DispatchGroup()
        DispatchQueue.global(qos: .userInitiated).async(group: done) {
            result.copy = Prepared.Memory(copying: memory, nodes: nodes, into: spare)
        }
        return {
            done.wait()
            return result.copy!
        }
    }

    /// Two lists in queue order merged into one.
    static func merged(_ a: [HeapEntry], _ b: [HeapEntry]) -> [HeapEntry] {
        if b.isEmpty { return a }
        var out: [HeapEntry] = []
        out.reserveCapacity(a.count + b.count)
        var i = 0, j = 0
        while i < a.count && j < b.count {
            if before(b[j], a[i]) { out.append(b[j]); j += 1 } else { out.append(a[i]); i += 1 }
        }
        out.append(contentsOf: a[i...])
        out.append(contentsOf: b[j...])
        return out
    }

    mutating func execute() -> Clustering {
        let n = graph.chainCount
        precondition(params.coreChains.count == n, "core membership must cover every chain")
        let (baseSize, oversize, zeroAtStart) = prepare()
        var zero = zeroAtStart
        // Every entry taken from the lists gives at most one event, and the joins' own
        // entries and defragmentation seldom add as many again: room for them at once,
        // rather than the event list copied at every doubling (megabytes on a kernel).
        if params.recordEvents { events.reserveCapacity(initial.count + zero.count + nodes / 8) }
        let coreSize = size[Int(core)]
        coreLimit = coreSize + Int((Double(baseSize) * params.gamma / 100).rounded(.down))

        // Step 3: coalescing in descending edge weight: the sorted list's edges merged with
        // a queue that holds only what joins add (pairs whose weights added up) and the
        // later rounds' edges; then the weight-0 edges.
        var zeroAt = 0
        var untilAsked = Coalescer.stopInterval
        outer: while true {
            while true {
                if stop != nil {
                    untilAsked -= 1
                    if untilAsked == 0 {
                        untilAsked = Coalescer.stopInterval
                        if stop!() { stopped = true; break outer }
                    }
                }
                let e: HeapEntry
                if let h = pop() { e = h } else if zeroAt < zero.count { prefetch(zero, at: zeroAt); e = zero[zeroAt]; zeroAt += 1 } else { break }
                var r = Int(e.record)
                while records[r].u < 0 {
                    let f = records[r].forward
                    if f < 0 { break }
                    r = Int(f)
                }
                let x = records[r].u, y = records[r].v
                guard x >= 0 else { continue }                        // the pair joined
                let (a, b) = x < y ? (x, y) : (y, x)
                let weight = records[r].weight
                guard weight == e.weight else { continue }            // superseded by a heavier entry
                if records[r].refusedRound == round { continue }      // the same question again
                if !tryMerge(a, b, r, eventWeight: weight, defrag: false) { records[r].refusedRound = round }
            }
            // A join can shrink other clusters (jumps into code that joined core lose their
            // stubs), so an edge refused earlier may fit now: look once more.
            round += 1
            var again = false
            if round < 16 {
                zero.removeAll()
                zeroAt = 0
                for r in 0..<recordCount where records[r].u >= 0 {
                    let a = records[r].u, b = records[r].v
                    if mergedSize(a, b, r) <= limit(a, b) {
                        push(entry(records[r].weight, a, b, r))
                        again = true
                    }
                }
            }
            if !again { break }
        }

        // Step 4: defragmentation (not for a run that gave up: its result is dropped).
        if !stopped { defragment() }
        return finish(members: params.coreChains, oversize: oversize, baseSize: baseSize)
    }

    /// The queue entries of the weighted records in queue order (heaviest first, ties by
    /// their chains). Just after `initialise` the records between two chains were made in
    /// the order of their chains, which is the order of ties, so those need only a stable
    /// sort by weight (a radix sort over the bytes in which the weights differ); core's
    /// records, made where core's edges came, are sorted in full and merged in. Should
    /// the order of ties not hold, everything is sorted in full.
    func weightedEntries() -> [HeapEntry] {
        var ofCore: [HeapEntry] = [], others: [HeapEntry] = []
        others.reserveCapacity(recordCount)
        var inOrder = true
        var lastTie: UInt64 = 0
        for r in 0..<recordCount where records[r].weight > 0 {
            let e = startEntry(records[r].weight, records[r].u, records[r].v, r)
            if records[r].u == core || records[r].v == core {
                ofCore.append(e)
            } else {
                inOrder = inOrder && e.tie > lastTie
                lastTie = e.tie
                others.append(e)
            }
        }
        if inOrder { others = Coalescer.stablySortedByKey(others) } else { others.sort(by: Coalescer.before) }
        ofCore.sort(by: Coalescer.before)
        return Coalescer.merged(others, ofCore)
    }

    /// `entries` sorted by key alone, equal keys kept in their order: a radix sort, one
    /// pass per byte in which the keys differ (two or three for a profile's weights).
    static func stablySortedByKey(_ entries: [HeapEntry]) -> [HeapEntry] {
        guard let first = entries.first else { return entries }
        var differ: UInt64 = 0
        for e in entries { differ |= e.key ^ first.key }
        var from = entries
        var to = entries
        var count = [Int](repeating: 0, count: 256)
        for shift in stride(from: UInt64(0), to: 64, by: 8) where (differ >> shift) & 0xFF != 0 {
            from.withUnsafeBufferPointer { src in
                to.withUnsafeMutableBufferPointer { dst in
                    count.withUnsafeMutableBufferPointer { at in
                        for i in 0..<256 { at[i] = 0 }
                        for e in src { at[Int(truncatingIfNeeded: e.key >> shift) & 0xFF] += 1 }
                        var sum = 0
                        for i in 0..<256 { let c = at[i]; at[i] = sum; sum += c }
                        for e in src {
                            let d = Int(truncatingIfNeeded: e.key >> shift) & 0xFF
                            dst[at[d]] = e
                            at[d] += 1
                        }
                    }
                }
            }
            swap(&from, &to)
        }
        return from
    }

    /// The queue entries of the weight-0 records, in the order of their lowest chains:
    /// core's first (its low chain counts as -1), by the other side's chain; then the
    /// other pairs by their lower chain, then their higher. Just after `initialise` every
    /// node is a chain or core, and the records between chains were made in that order.
    func zeroWeightEntries() -> [HeapEntry] {
        var ofCore: [(other: Int32, record: Int32)] = []
        var out: [HeapEntry] = []
        for r in 0..<recordCount where records[r].weight == 0 && records[r].u >= 0 {
            let rec = records[r]
            if rec.u == core || rec.v == core {
                ofCore.append((rec.u == core ? rec.v : rec.u, Int32(r)))
            } else {
                out.append(startEntry(0, rec.u, rec.v, r))
            }
        }
        ofCore.sort { $0.other < $1.other }
        return ofCore.map { startEntry(0, records[Int($0.record)].u, records[Int($0.record)].v, Int($0.record)) } + out
    }

    @inline(__always)
    func mergedSize(_ a: Int32, _ b: Int32, _ r: Int) -> Int {
        let e = adj(r, from: a)
        let savings = Int(e.callOut) + (b == core ? 0 : Int(e.jumpOut)) + Int(e.callIn) + (a == core ? 0 : Int(e.jumpIn))
        return size[Int(a)] + size[Int(b)] - savings
    }

    /// Considers joining `a` and `b` (current representatives, `r` their record or -1 when
    /// they share none); records the outcome with `eventWeight`.
    @discardableResult
    mutating func tryMerge(_ a: Int32, _ b: Int32, _ r: Int, eventWeight: UInt64, defrag: Bool) -> Bool {
        let merged = r >= 0 ? mergedSize(a, b, r) : size[Int(a)] + size[Int(b)]
        let limit = limit(a, b)
        let intoCore = a == core || b == core
        // Events name core first, else the cluster with the lower chain first.
        let (x, y) = b == core || (a != core && low[Int(b)] < low[Int(a)]) ? (b, a) : (a, b)
        if merged > limit {
            if params.recordEvents && !defrag {
                events.append(CoalesceEvent(kind: .refused, a: low[Int(x)], b: low[Int(y)], weight: eventWeight,
                                            sizeA: Int32(size[Int(x)]), sizeB: Int32(size[Int(y)]),
                                            result: Int32(clamping: merged), limit: Int32(clamping: limit)))
            }
            return false
        }
        if params.recordEvents {
            let kind: CoalesceEvent.Kind = defrag ? (intoCore ? .defragmentedIntoCore : .defragmented) : (intoCore ? .absorbedIntoCore : .merged)
            events.append(CoalesceEvent(kind: kind, a: low[Int(x)], b: low[Int(y)], weight: eventWeight,
                                        sizeA: Int32(size[Int(x)]), sizeB: Int32(size[Int(y)]),
                                        result: Int32(clamping: merged), limit: Int32(clamping: limit)))
        }
        join(a, b, merged: merged)
        return true
    }

    /// Joins two representatives; the survivor is core if either is, else the one with
    /// more neighbours (so the smaller list is walked).
    mutating func join(_ a: Int32, _ b: Int32, merged: Int) {
        var s = a, d = b
        if b == core || (a != core && degree[Int(b)] > degree[Int(a)]) { s = b; d = a }
        let intoCore = s == core
        size[Int(s)] = merged
        low[Int(s)] = s == core ? -1 : min(low[Int(s)], low[Int(d)])
        parent[Int(d)] = s
        // The pairs of `d` stay in the table (see `PairTable`): room for as many new ones.
        if !pairs.hasRoom(for: Int(degree[Int(d)])) { rebuildPairs() }
        if let r = pairs.find(pairKey(s, d)) {
            records[Int(r)].u = -1
            degree[Int(s)] -= 1
        }
        var slot = head[Int(d)]
        head[Int(d)] = -1
        degree[Int(d)] = 0
        if !prefetching {
            while slot >= 0 {
                let rec = records + Int(slot >> 1)
                let following = slot & 1 == 0 ? rec.pointee.nextU : rec.pointee.nextV
                if rec.pointee.u >= 0 { moveToSurvivor(slot, s, intoCore) }
                slot = following
            }
            return
        }
        // Prefetching, `d`'s list is walked in stretches: the live slots of a stretch are
        // gathered first, with the table slot and the node each will look at asked for,
        // then handled in order (handling one moves only its own record, so the gathered
        // links hold).
        while slot >= 0 {
            var n = 0
            while slot >= 0 && n < stretch {
                let rec = records + Int(slot >> 1)
                let atU = slot & 1 == 0
                if rec.pointee.u >= 0 {
                    let z = atU ? rec.pointee.v : rec.pointee.u
                    pairs.prefetch(pairKey(s, z))
                    ovl_prefetch(nodeStore + Int(z) &* Node.stride)
                    walk[n] = slot
                    n += 1
                }
                slot = atU ? rec.pointee.nextU : rec.pointee.nextV
            }
            for i in 0..<n { moveToSurvivor(walk[i], s, intoCore) }
        }
    }

    /// The size of the records above which the coalescer prefetches: 8 MB, about 175,000
    /// edges. The Linux tinyconfig kernel's 68,714 edges (3.3 MB of records, 6 MB with the
    /// pair table and nodes) ran 7% slower with prefetching, a synthetic graph of 125,000
    /// chains (240,000 edges) 15% faster, one of a million chains 30% faster.
    static let prefetchAbove = 8 << 20

    /// Moves the live record at list slot `slot` of the cluster joining `s` over to `s`:
    /// into `s`'s own record with the same neighbour, or as a new neighbour of `s`.
    @inline(__always)
    mutating func moveToSurvivor(_ slot: Int32, _ s: Int32, _ intoCore: Bool) {
        let r = Int(slot >> 1)
        let rec = records[r]
        let atU = slot & 1 == 0
        let z = atU ? rec.v : rec.u
        let fromZ = atU
            ? Adj(weight: rec.weight, jumpOut: rec.jumpVU, jumpIn: rec.jumpUV, callOut: rec.callVU, callIn: rec.callUV)
            : Adj(weight: rec.weight, jumpOut: rec.jumpUV, jumpIn: rec.jumpVU, callOut: rec.callUV, callIn: rec.callVU)
        // Jumps from third parties into `d` need no stub once `d` is resident.
        if intoCore { size[Int(z)] -= Int(fromZ.jumpOut) }
        let zKey = pairKey(s, z)
        if let k32 = pairs.find(zKey) {
            // s and z were neighbours already: the weights add, the edge moves up.
            let k = Int(k32)
            add(fromZ, into: k, from: z)
            records[r].u = -1
            records[r].forward = Int32(k)
            degree[Int(z)] -= 1
            if fromZ.weight > 0 { push(entry(records[k].weight, s, z, k)) }
        } else {
            // A new neighbour of s: the queued entries for (d, z) now stand for (s, z).
            pairs.insert(zKey, Int32(r))
            if atU {
                records[r].u = s
                records[r].nextU = head[Int(s)]
            } else {
                records[r].v = s
                records[r].nextV = head[Int(s)]
            }
            records[r].refusedRound = -1
            head[Int(s)] = slot
            degree[Int(s)] += 1
        }
    }

    /// The pair table with only the pairs of live records.
    mutating func rebuildPairs() {
        pairs.clear()
        // Prefetching, the slot of the live record 8 ahead is asked for.
        let ahead = prefetching ? 8 : recordCount
        for r in 0..<recordCount {
            if r + ahead < recordCount, records[r + ahead].u >= 0 {
                pairs.prefetch(pairKey(records[r + ahead].u, records[r + ahead].v))
            }
            if records[r].u >= 0 { pairs.insert(pairKey(records[r].u, records[r].v), Int32(r)) }
        }
    }

    // MARK: Defragmentation

    mutating func defragment() {
        let n = graph.chainCount
        let limit = params.bufferSize
        var live: [Int32] = []
        for x in 0..<n where parent[x] == Int32(x) { live.append(Int32(x)) }
        if params.defragmentIntoCore {
            // Smallest clusters first, while core has room.
            live.sort { (size[Int($0)], low[Int($0)]) < (size[Int($1)], low[Int($1)]) }
            var kept: [Int32] = []
            for x in live {
                let r = pairs.find(pairKey(x, core)).map { Int($0) } ?? -1
                if !tryMerge(x, core, r, eventWeight: r >= 0 ? records[r].weight : 0, defrag: true) { kept.append(x) }
            }
            live = kept
        }
        // Size buckets, and the set of sizes that have one, to find the largest cluster
        // that fits.
        let m = limit + 1
        var buckets = [[Int32]](repeating: [], count: m)
        var present = SizeSet(count: m)
        for x in live where size[Int(x)] <= limit {
            buckets[size[Int(x)]].append(x)
            present.insert(size[Int(x)])
        }
        // Inside a bucket, the lowest chain first (kept last, taken first).
        let lows = low
        for s in 0..<m where buckets[s].count > 1 { buckets[s].sort { lows[Int($0)] > lows[Int($1)] } }
        func take(_ s: Int) -> Int32 {
            let x = buckets[s].removeLast()
            if buckets[s].isEmpty { present.remove(s) }
            return x
        }
        while let smallest = present.smallest() {
            let b = take(smallest)
            let room = limit - smallest
            guard room >= 0, let s = present.largest(atMost: room) else { continue }
            let a = take(s)
            let r = pairs.find(pairKey(a, b)).map { Int($0) } ?? -1
            _ = tryMerge(a, b, r, eventWeight: 0, defrag: true)
            let j = find(a)
            let rs = size[Int(j)]
            let lowJ = lows[Int(j)]
            var pos = buckets[rs].count
            for (i, x) in buckets[rs].enumerated() where lows[Int(x)] < lowJ { pos = i; break }
            buckets[rs].insert(j, at: pos)
            present.insert(rs)
        }
    }

    // MARK: Result

    mutating func finish(members: [Bool], oversize: [Int32], baseSize: Int) -> Clustering {
        let n = graph.chainCount
        var reps: [Int32] = []
        var clusterOfRep = [Int32](repeating: -1, count: n + 1)
        var chainCluster = [Int32](repeating: -1, count: n)
        var state = [ChainState](repeating: .cold, count: n)
        var counts: [Int32] = []
        // Clusters numbered by their lowest chain (address order).
        for c in 0..<n {
            let r = find(Int32(c))
            if r == core { continue }
            if clusterOfRep[Int(r)] < 0 {
                clusterOfRep[Int(r)] = Int32(reps.count)
                reps.append(r)
                counts.append(0)
            }
            let k = clusterOfRep[Int(r)]
            chainCluster[c] = k
            counts[Int(k)] += 1
        }
        var clusterChains = counts.map { k -> [Int32] in
            var a: [Int32] = []
            a.reserveCapacity(Int(k))
            return a
        }
        let oversizeSet = Set(oversize)
        for c in 0..<n {
            let k = chainCluster[c]
            if k < 0 {
                state[c] = members[c] ? .core : oversizeSet.contains(Int32(c)) ? .oversize : .hot
            } else {
                clusterChains[Int(k)].append(Int32(c))
            }
        }
        return Clustering(chainCluster: chainCluster, chainState: state, clusterSize: reps.map { Int32(size[Int($0)]) },
                          clusterChains: clusterChains, residentCodeBytes: size[Int(core)], coreBaseBytes: baseSize,
                          coreLimit: coreLimit, oversizeChains: oversize, events: events, parameters: params)
    }

    // MARK: Heap (max by weight, then lowest chains first)

    @inline(__always)
    static func before(_ x: HeapEntry, _ y: HeapEntry) -> Bool {
        x.key != y.key ? x.key < y.key : x.tie < y.tie
    }

    mutating func push(_ e: HeapEntry) {
        heap.append(e)
        heap.withUnsafeMutableBufferPointer { h in
            var i = h.count - 1
            while i > 0 {
                let p = (i - 1) >> 2
                guard Coalescer.before(e, h[p]) else { break }
                h[i] = h[p]
                i = p
            }
            h[i] = e
        }
    }

    /// A 4-ary heap: half the levels of a binary one, and the four children share a
    /// cache line.
    @inline(__always)
    static func siftDown(_ h: UnsafeMutableBufferPointer<HeapEntry>, _ start: Int) {
        let n = h.count
        var i = start
        let e = h[i]
        while true {
            let c = 4 * i + 1
            if c >= n { break }
            var m = c
            let end = min(c + 4, n)
            var k = c + 1
            while k < end {
                if before(h[k], h[m]) { m = k }
                k += 1
            }
            guard before(h[m], e) else { break }
            h[i] = h[m]
            i = m
        }
        h[i] = e
    }

    /// The next entry: the better of the sorted list's next and the queue's top.
    @inline(__always)
    mutating func pop() -> HeapEntry? {
        if initialAt < initial.count && (heap.isEmpty || Coalescer.before(initial[initialAt], heap[0])) {
            prefetch(initial, at: initialAt)
            initialAt += 1
            return initial[initialAt - 1]
        }
        return popQueue()
    }

    /// Asks for what the list's entries a few places after `i` will read: the record of
    /// the one 16 ahead; the nodes at the ends of the one 8 ahead and the table slot of
    /// their pair (its record asked for 8 entries earlier); then, for the ones 4, 2 and 1
    /// ahead, the first, second and third records of the list a join of the pair would
    /// walk (that of the end with fewer neighbours), each found through the one asked for
    /// before. The lists are in weight order, so their records lie anywhere: on a
    /// million-chain graph the coalescer otherwise waits on memory at every entry.
    @inline(__always)
    func prefetch(_ list: [HeapEntry], at i: Int) {
        guard prefetching else { return }
        list.withUnsafeBufferPointer { l in
            if i + 16 < l.count { ovl_prefetch(records + Int(l[i + 16].record)) }
            if i + 8 < l.count {
                let r = records + Int(l[i + 8].record)
                let u = r.pointee.u, v = r.pointee.v
                if u >= 0 {
                    ovl_prefetch(nodeStore + Int(u) &* Node.stride)
                    ovl_prefetch(nodeStore + Int(v) &* Node.stride)
                    pairs.prefetch(pairKey(u, v))
                }
            }
            if i + 4 < l.count { prefetchList(l[i + 4].record, depth: 0) }
            if i + 2 < l.count { prefetchList(l[i + 2].record, depth: 1) }
            if i + 1 < l.count { prefetchList(l[i + 1].record, depth: 2) }
        }
    }

    /// Asks for the record `depth` places into the list a join of record `r`'s ends would
    /// walk.
    @inline(__always)
    func prefetchList(_ r: Int32, depth: Int) {
        let rec = records + Int(r)
        let u = rec.pointee.u, v = rec.pointee.v
        guard u >= 0 else { return }
        var slot = v == core || (u != core && degree[Int(v)] > degree[Int(u)]) ? head[Int(u)] : head[Int(v)]
        var k = 0
        while k < depth && slot >= 0 {
            let next = records + Int(slot >> 1)
            slot = slot & 1 == 0 ? next.pointee.nextU : next.pointee.nextV
            k += 1
        }
        if slot >= 0 { ovl_prefetch(records + Int(slot >> 1)) }
    }

    mutating func popQueue() -> HeapEntry? {
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            heap.withUnsafeMutableBufferPointer { Coalescer.siftDown($0, 0) }
        }
        return top
    }
}

/// A node's fields in the coalescer, laid out in 32 bytes so that a node never straddles
/// two cache lines: parent, lowest chain, degree and list head (4 bytes each), then the
/// size; the last 8 bytes are padding.
enum Node {
    static let stride = 32

    static func allocate(_ count: Int, huge: Bool = true) -> UnsafeMutableRawPointer {
        LargeMemory.allocate(byteCount: max(count, 1) * stride, huge: huge)
    }

    static func fields(_ base: UnsafeMutableRawPointer)
        -> (parent: NodeField<Int32>, low: NodeField<Int32>, degree: NodeField<Int32>, head: NodeField<Int32>, size: NodeField<Int>) {
        (NodeField(base), NodeField(base + 4), NodeField(base + 8), NodeField(base + 12), NodeField(base + 16))
    }
}

/// One field of every node (see `Node`), read and written like an array.
struct NodeField<T>: @unchecked Sendable {
    let base: UnsafeMutableRawPointer

    init(_ base: UnsafeMutableRawPointer) { self.base = base }

    @inline(__always)
    subscript(_ i: Int) -> T {
        get { base.load(fromByteOffset: i &* Node.stride, as: T.self) }
        nonmutating set { base.storeBytes(of: newValue, toByteOffset: i &* Node.stride, as: T.self) }
    }
}

/// The sizes that have a cluster waiting, as a bitmap of two levels (a bit per size, and
/// a bit per 64-bit word of those that is not empty), answering "smallest size present"
/// and "largest size present at most x" with a few word scans: defragmentation asks both
/// for every cluster it places.
struct SizeSet {
    var words: [UInt64]
    var summary: [UInt64]

    init(count: Int) {
        let w = (count + 63) / 64
        words = [UInt64](repeating: 0, count: max(1, w))
        summary = [UInt64](repeating: 0, count: max(1, (w + 63) / 64))
    }

    mutating func insert(_ i: Int) {
        words[i >> 6] |= 1 << UInt64(i & 63)
        summary[i >> 12] |= 1 << UInt64((i >> 6) & 63)
    }

    mutating func remove(_ i: Int) {
        words[i >> 6] &= ~(1 << UInt64(i & 63))
        if words[i >> 6] == 0 { summary[i >> 12] &= ~(1 << UInt64((i >> 6) & 63)) }
    }

    func smallest() -> Int? {
        for (j, s) in summary.enumerated() where s != 0 {
            let w = j << 6 | s.trailingZeroBitCount
            return w << 6 | words[w].trailingZeroBitCount
        }
        return nil
    }

    func largest(atMost x: Int) -> Int? {
        guard x >= 0 else { return nil }
        let x = min(x, words.count * 64 - 1)
        // The word holding x, masked to sizes up to x.
        let w = x >> 6
        let inWord = words[w] & (x & 63 == 63 ? ~0 : (1 << UInt64((x & 63) + 1)) - 1)
        if inWord != 0 { return w << 6 | (63 - inWord.leadingZeroBitCount) }
        // Words below it: the summary word holding w, masked to words below w, then lower.
        var j = w >> 6
        var s = summary[j] & ((1 << UInt64(w & 63)) - 1)
        while true {
            if s != 0 {
                let v = j << 6 | (63 - s.leadingZeroBitCount)
                return v << 6 | (63 - words[v].leadingZeroBitCount)
            }
            if j == 0 { return nil }
            j -= 1
            s = summary[j]
        }
    }
}

/// A hash table from a pair of clusters to its record: open addressing with linear
/// probing. A key is the pair's lower node shifted above the higher one
/// (`PairTable.key`); where the key and a record number fit in 64 bits together (every
/// graph up to about two million chains) a slot is that one word, else two (key, value).
/// Nothing is ever removed: a pair leaves the table only when one of its clusters joins
/// another, and a cluster that joined is never asked about again, so its keys simply
/// stay, unmatched. The coalescer builds the table again from its live records when
/// inserts fill three quarters of it (`hasRoom`).
struct PairTable {
    let slots: UnsafeMutablePointer<UInt64>
    let mask: Int
    /// Bits of a node in a key; a key takes twice as many.
    let nodeBits: UInt64
    /// 0: one word a slot (key in the low 2 × nodeBits bits, value + 1 above);
    /// 1: two words a slot.
    let wide: Int
    let keyMask: UInt64
    /// Keys inserted since the last `clear`, live or not.
    private(set) var used = 0
    /// How many keys may be inserted before the table is built again. Never more than
    /// there are slots: after a rebuild at most `records` keys are live, and one join
    /// inserts at most as many again, which the `2 × records + 2` slots hold.
    let limit: Int

    /// How the table is laid out: `automatic` for use; the tests force the two-word slots
    /// of very large graphs and a table that fills up and is built again at every chance.
    enum Shape: Sendable { case automatic, twoWords, crowded }

    /// A table for a graph of `nodes` nodes and at most `records` records.
    init(nodes: Int, records: Int, shape: Shape = .automatic) {
        var bits: UInt64 = 1
        while (1 << bits) < nodes { bits += 1 }
        var valueBits: UInt64 = 1
        while (1 << valueBits) < records + 2 { valueBits += 1 }
        if 2 * bits + valueBits <= 64 && shape != .twoWords {
            nodeBits = bits
            wide = 0
            keyMask = (1 << (2 * bits)) - 1
        } else {
            nodeBits = 32
            wide = 1
            keyMask = ~0
        }
        var c = 16
        while c < 2 * records + 2 { c <<= 1 }
        mask = c - 1
        limit = shape == .crowded ? records + 1 : c / 4 * 3
        slots = LargeMemory.allocate(c << wide, of: UInt64.self)
        clear()
    }

    func deallocate() { slots.deallocate() }

    init(copying other: PairTable) {
        mask = other.mask
        nodeBits = other.nodeBits
        wide = other.wide
        keyMask = other.keyMask
        limit = other.limit
        used = other.used
        slots = LargeMemory.allocate((mask + 1) << wide, of: UInt64.self, huge: false)
        slots.initialize(from: other.slots, count: (mask + 1) << wide)
    }

    func sameShape(as other: PairTable) -> Bool {
        other.mask == mask && other.wide == wide && other.nodeBits == nodeBits && other.limit == limit
    }

    /// Takes `other`'s contents (a table of the same shape).
    mutating func update(from other: PairTable) {
        precondition(sameShape(as: other))
        slots.update(from: other.slots, count: (mask + 1) << wide)
        used = other.used
    }

    mutating func clear() {
        slots.initialize(repeating: 0, count: (mask + 1) << wide)
        used = 0
    }

    /// The key of the pair of nodes `a` and `b` (never 0: the two differ).
    @inline(__always)
    func key(_ a: Int32, _ b: Int32) -> UInt64 {
        a < b ? UInt64(UInt32(a)) &<< nodeBits | UInt64(UInt32(b)) : UInt64(UInt32(b)) &<< nodeBits | UInt64(UInt32(a))
    }

    /// Whether `n` more keys fit under the limit (three quarters of the slots).
    @inline(__always)
    func hasRoom(for n: Int) -> Bool { used + n <= limit }

    @inline(__always)
    func home(_ key: UInt64) -> Int { Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) &>> 32) & mask }

    /// Asks for the cache line of `key`'s home slot (see `ovl_prefetch`).
    @inline(__always)
    func prefetch(_ key: UInt64) { ovl_prefetch(slots + (home(key) &<< wide)) }

    @inline(__always)
    func find(_ key: UInt64) -> Int32? {
        var i = home(key)
        while true {
            let w = slots[i &<< wide]
            if w == 0 { return nil }
            if w & keyMask == key {
                return wide == 0 ? Int32(truncatingIfNeeded: (w &>> (2 &* nodeBits)) &- 1) : Int32(truncatingIfNeeded: slots[(i << 1) + 1])
            }
            i = (i &+ 1) & mask
        }
    }

    /// Adds `key` (not in the table) with `value`.
    @inline(__always)
    mutating func insert(_ key: UInt64, _ value: Int32) {
        var i = home(key)
        while slots[i &<< wide] != 0 { i = (i &+ 1) & mask }
        if wide == 0 {
            slots[i] = key | (UInt64(UInt32(value)) + 1) &<< (2 &* nodeBits)
        } else {
            slots[i << 1] = key
            slots[(i << 1) + 1] = UInt64(UInt32(value))
        }
        used += 1
    }
}
