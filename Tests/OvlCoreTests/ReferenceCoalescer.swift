import Foundation
@testable import OvlCore

// The coalescer as it was before its graph moved to flat records and a pair table
// (2026-12-01): adjacency lists of structs with a dictionary index, stale queue entries
// checked against them. Kept here, unchanged but for its name, as the oracle the fast
// coalescer must equal exactly: the same clusters, sizes, states and event list on random
// graphs (`CoalescerEquivalenceTests`).

struct ReferenceCoalescer {
    struct Adj {
        var nb: Int32
        var weight: UInt64
        // Raw stub bytes between this node and `nb`, by direction.
        var jumpOut: Int32
        var jumpIn: Int32
        var callOut: Int32
        var callIn: Int32

        func reversed(to me: Int32) -> Adj {
            Adj(nb: me, weight: weight, jumpOut: jumpIn, jumpIn: jumpOut, callOut: callIn, callIn: callOut)
        }
        mutating func add(_ o: Adj) {
            weight &+= o.weight
            jumpOut += o.jumpOut; jumpIn += o.jumpIn; callOut += o.callOut; callIn += o.callIn
        }
    }

    /// A node's neighbours: a small array, with a hash index once it grows.
    struct AdjList {
        var items: [Adj] = []
        var index: [Int32: Int]? = nil

        func find(_ nb: Int32) -> Int? {
            if let index { return index[nb] }
            for i in 0..<items.count where items[i].nb == nb { return i }
            return nil
        }
        mutating func append(_ a: Adj) {
            items.append(a)
            if index != nil { index![a.nb] = items.count - 1 } else if items.count > 8 { rebuildIndex() }
        }
        mutating func remove(at i: Int) {
            let removed = items[i].nb
            let last = items.count - 1
            if i != last { items[i] = items[last] }
            items.removeLast()
            if index != nil {
                index![removed] = nil
                if i != last { index![items[i].nb] = i }
            }
        }
        mutating func rebuildIndex() {
            var d = [Int32: Int](minimumCapacity: items.count * 2)
            for (i, a) in items.enumerated() { d[a.nb] = i }
            index = d
        }
    }

    /// A queue entry: the edge between the clusters of chains `a` and `b`, with its weight
    /// when queued. Entries go stale when a side joins another cluster; they are checked
    /// against the current graph when they come out.
    struct HeapEntry {
        /// ~weight, so that the heaviest edge has the smallest key.
        var key: UInt64
        /// The two sides' lowest chains when queued (core as 0, chain c as c + 1), lower
        /// one in the high half: the order among equal weights.
        var tie: UInt64
        var a: Int32
        var b: Int32

        init(weight: UInt64, a: Int32, b: Int32, tie: UInt64) {
            self.key = ~weight; self.a = a; self.b = b; self.tie = tie
        }
        var weight: UInt64 { ~key }
    }

    /// An entry for the edge between clusters `a` and `b`.
    func entry(_ weight: UInt64, _ a: Int32, _ b: Int32) -> HeapEntry {
        let x = UInt64(UInt32(bitPattern: low[Int(a)] + 1)), y = UInt64(UInt32(bitPattern: low[Int(b)] + 1))
        return HeapEntry(weight: weight, a: a, b: b, tie: min(x, y) << 32 | max(x, y))
    }

    let graph: ClusterGraph
    let params: CoalescerParameters
    let core: Int32
    var parent: [Int32]
    var size: [Int]
    var cap: [Int]
    var adj: [AdjList]
    /// Lowest chain of each node (names clusters in events, orders ties).
    var low: [Int32]
    var events: [CoalesceEvent] = []
    var heap: [HeapEntry] = []
    var absorbed: [Bool]

    static func run(_ graph: ClusterGraph, _ params: CoalescerParameters) -> Clustering {
        var c = ReferenceCoalescer(graph: graph, params: params)
        return c.execute()
    }

    init(graph: ClusterGraph, params: CoalescerParameters) {
        self.graph = graph
        self.params = params
        let n = graph.chainCount
        core = Int32(n)
        parent = Array(0...Int32(n))
        size = [Int](repeating: 0, count: n + 1)
        cap = [Int](repeating: params.bufferSize, count: n + 1)
        adj = [AdjList](repeating: AdjList(), count: n + 1)
        low = Array(0...Int32(n))
        low[n] = -1
        absorbed = [Bool](repeating: false, count: n + 1)
    }

    @inline(__always)
    mutating func find(_ x0: Int32) -> Int32 {
        var x = x0
        while parent[Int(x)] != x {
            let p = parent[Int(parent[Int(x)])]
            parent[Int(x)] = p
            x = p
        }
        return x
    }

    /// Stub bytes that transfers from `a` to `b` cost while they are apart.
    @inline(__always)
    func stubCost(_ e: Adj, fromCore: Bool, toCore: Bool) -> Int {
        _ = fromCore
        return Int(e.callOut) + (toCore ? 0 : Int(e.jumpOut))
    }

    /// Sizes of every node, given which chains are in core, with adjacency aggregated.
    mutating func initialise(coreMembers: [Bool]) -> (coreSize: Int, oversize: [Int32]) {
        let n = graph.chainCount
        for i in 0...n { parent[i] = Int32(i); size[i] = 0; adj[i] = AdjList() }
        for c in 0..<n where coreMembers[c] { parent[c] = core }
        for c in 0..<n {
            let r = Int(parent[c])
            size[r] += Int(graph.chainBytes[c]) + Int(graph.chainIndirectStubBytes[c])
        }
        var coreAdj: [Int32: Int] = [:]
        for e in 0..<graph.edgeCount {
            let x = parent[Int(graph.edgeA[e])], y = parent[Int(graph.edgeB[e])]
            guard x != y else { continue }
            let fwd = Adj(nb: y, weight: graph.edgeWeight[e], jumpOut: graph.edgeJumpAB[e], jumpIn: graph.edgeJumpBA[e],
                          callOut: graph.edgeCallAB[e], callIn: graph.edgeCallBA[e])
            size[Int(x)] += stubCost(fwd, fromCore: x == core, toCore: y == core)
            size[Int(y)] += stubCost(fwd.reversed(to: x), fromCore: y == core, toCore: x == core)
            // Edges touching core may repeat (several core chains): aggregate them.
            if x == core || y == core {
                let other = x == core ? y : x
                let toOther = x == core ? fwd : fwd.reversed(to: x)  // as seen from core
                if let i = coreAdj[other] {
                    adj[Int(core)].items[i].add(toOther)
                    let j = adj[Int(other)].find(core)!
                    adj[Int(other)].items[j].add(toOther.reversed(to: core))
                } else {
                    coreAdj[other] = adj[Int(core)].items.count
                    adj[Int(core)].items.append(toOther)
                    adj[Int(other)].append(toOther.reversed(to: core))
                }
            } else {
                adj[Int(x)].append(fwd)
                adj[Int(y)].append(fwd.reversed(to: x))
            }
        }
        adj[Int(core)].rebuildIndex()
        var oversize: [Int32] = []
        for c in 0..<n where parent[c] == Int32(c) && size[c] > params.bufferSize { oversize.append(Int32(c)) }
        return (size[Int(core)], oversize)
    }

    mutating func execute() -> Clustering {
        let n = graph.chainCount
        precondition(params.coreChains.count == n, "core membership must cover every chain")
        // Pass 1: configured core only, to find chains too large for the buffer.
        var members = params.coreChains
        let (baseSize, oversize) = initialise(coreMembers: members)
        if !oversize.isEmpty {
            for c in oversize { members[Int(c)] = true }
            _ = initialise(coreMembers: members)
        }
        let coreSize = size[Int(core)]
        let coreLimit = coreSize + Int((Double(baseSize) * params.gamma / 100).rounded(.down))
        cap[Int(core)] = coreLimit

        // Step 3: coalescing in descending edge weight. Edges of weight 0 (never taken in
        // the profile) are the most numerous and all tie; they wait in a list ordered by
        // their chains and come after every weighted edge.
        var zero: [HeapEntry] = []
        for x in 0...n where parent[x] == Int32(x) {
            for a in adj[x].items where Int32(x) < a.nb {
                let e = entry(a.weight, Int32(x), a.nb)
                if a.weight == 0 { zero.append(e) } else { heap.append(e) }
            }
        }
        heapify()
        zero.sort { $0.tie < $1.tie }
        var rounds = 0
        var refusedAt: [UInt64: UInt64] = [:]
        while true {
            var z = 0
            while true {
                let e: HeapEntry
                if let h = pop() { e = h } else if z < zero.count { e = zero[z]; z += 1 } else { break }
                let x = find(e.a), y = find(e.b)
                guard x != y else { continue }
                let (a, b) = x < y ? (x, y) : (y, x)
                guard let i = adj[Int(a)].find(b) else { continue }
                let entry = adj[Int(a)].items[i]
                guard entry.weight == e.weight else { continue }  // superseded by a heavier entry
                let pair = UInt64(UInt32(a)) << 32 | UInt64(UInt32(b))
                if refusedAt[pair] == e.weight { continue }        // the same question again
                if !tryMerge(a, b, entry, defrag: false) { refusedAt[pair] = e.weight }
            }
            // A join can shrink other clusters (jumps into code that joined core lose their
            // stubs), so an edge refused earlier may fit now: look once more.
            rounds += 1
            var again = false
            if rounds < 16 {
                zero.removeAll()
                refusedAt.removeAll()
                for x in 0...n where parent[x] == Int32(x) {
                    for a in adj[x].items where Int32(x) < a.nb && fits(Int32(x), a.nb, a) {
                        push(entry(a.weight, Int32(x), a.nb))
                        again = true
                    }
                }
            }
            if !again { break }
        }

        // Step 4: defragmentation.
        defragment()
        return finish(members: params.coreChains, oversize: oversize, baseSize: baseSize, coreLimit: coreLimit)
    }

    func mergedSize(_ a: Int32, _ b: Int32, _ e: Adj) -> Int {
        let aCore = a == core, bCore = b == core
        let savings = stubCost(e, fromCore: aCore, toCore: bCore) + stubCost(e.reversed(to: a), fromCore: bCore, toCore: aCore)
        return size[Int(a)] + size[Int(b)] - savings
    }

    func fits(_ a: Int32, _ b: Int32, _ e: Adj) -> Bool {
        mergedSize(a, b, e) <= max(cap[Int(a)], cap[Int(b)])
    }

    /// Considers joining `a` and `b` (current representatives, `e` their edge as seen
    /// from `a`); records the outcome.
    @discardableResult
    mutating func tryMerge(_ a: Int32, _ b: Int32, _ e: Adj, defrag: Bool) -> Bool {
        let merged = mergedSize(a, b, e)
        let limit = max(cap[Int(a)], cap[Int(b)])
        let intoCore = a == core || b == core
        // Events name core first, else the cluster with the lower chain first.
        let (x, y) = b == core || (a != core && low[Int(b)] < low[Int(a)]) ? (b, a) : (a, b)
        if merged > limit {
            if params.recordEvents && !defrag {
                events.append(CoalesceEvent(kind: .refused, a: low[Int(x)], b: low[Int(y)], weight: e.weight,
                                            sizeA: Int32(size[Int(x)]), sizeB: Int32(size[Int(y)]),
                                            result: Int32(clamping: merged), limit: Int32(clamping: limit)))
            }
            return false
        }
        if params.recordEvents {
            let kind: CoalesceEvent.Kind = defrag ? (intoCore ? .defragmentedIntoCore : .defragmented) : (intoCore ? .absorbedIntoCore : .merged)
            events.append(CoalesceEvent(kind: kind, a: low[Int(x)], b: low[Int(y)], weight: e.weight,
                                        sizeA: Int32(size[Int(x)]), sizeB: Int32(size[Int(y)]),
                                        result: Int32(clamping: merged), limit: Int32(clamping: limit)))
        }
        join(a, b, merged: merged)
        return true
    }

    /// Joins two representatives; the survivor is core if either is, else the one with
    /// more neighbours (so the smaller list is moved).
    mutating func join(_ a: Int32, _ b: Int32, merged: Int) {
        // The survivor is core, else the side with more neighbours (the shorter list moves).
        var s = a, d = b
        if b == core || (a != core && adj[Int(b)].items.count > adj[Int(a)].items.count) { s = b; d = a }
        let intoCore = s == core
        // Jumps from third parties into `d` need no stub once `d` is resident.
        if intoCore {
            for z in adj[Int(d)].items where z.nb != s {
                size[Int(z.nb)] -= Int(z.jumpIn)
            }
            absorbed[Int(d)] = true
        }
        size[Int(s)] = merged
        cap[Int(s)] = max(cap[Int(s)], cap[Int(d)])
        low[Int(s)] = s == core ? -1 : min(low[Int(s)], low[Int(d)])
        parent[Int(d)] = s
        if let i = adj[Int(s)].find(d) { adj[Int(s)].remove(at: i) }
        let moved = adj[Int(d)].items
        adj[Int(d)] = AdjList()
        for z in moved where z.nb != s {
            let zn = Int(z.nb)
            // In z's list, the entry for d goes; its data joins z's entry for s.
            if let i = adj[zn].find(d) { adj[zn].remove(at: i) }
            let fromZ = z.reversed(to: s)
            if let j = adj[zn].find(s) {
                // s and z were neighbours already: the weights add, the edge moves up.
                adj[zn].items[j].add(fromZ)
                let k = adj[Int(s)].find(z.nb)!
                adj[Int(s)].items[k].add(z)
                if z.weight > 0 { push(entry(adj[zn].items[j].weight, min(s, z.nb), max(s, z.nb))) }
            } else {
                // A new neighbour of s: the queued entry for (d, z) now stands for (s, z).
                adj[zn].append(fromZ)
                adj[Int(s)].append(z)
            }
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
                let e = adj[Int(x)].find(core).map { adj[Int(x)].items[$0] } ?? Adj(nb: core, weight: 0, jumpOut: 0, jumpIn: 0, callOut: 0, callIn: 0)
                if !tryMerge(x, core, e, defrag: true) { kept.append(x) }
            }
            live = kept
        }
        // Size buckets with a max-tree over sizes, to find the largest cluster that fits.
        let m = limit + 1
        var buckets = [[Int32]](repeating: [], count: m)
        var tree = ReferenceSizeTree(count: m)
        for x in live where size[Int(x)] <= limit {
            buckets[size[Int(x)]].append(x)
            tree.increment(size[Int(x)], by: 1)
        }
        // Inside a bucket, the lowest chain first.
        for s in 0..<m where buckets[s].count > 1 { buckets[s].sort { low[Int($0)] > low[Int($1)] } }
        func take(_ s: Int, _ buckets: inout [[Int32]], _ tree: inout ReferenceSizeTree) -> Int32 {
            tree.increment(s, by: -1)
            return buckets[s].removeLast()
        }
        while let smallest = tree.smallestNonEmpty() {
            let b = take(smallest, &buckets, &tree)
            let room = limit - smallest
            guard room >= 0, let s = tree.largestNonEmpty(atMost: room) else { continue }
            let a = take(s, &buckets, &tree)
            let e = adj[Int(a)].find(b).map { adj[Int(a)].items[$0] } ?? Adj(nb: b, weight: 0, jumpOut: 0, jumpIn: 0, callOut: 0, callIn: 0)
            var eDefrag = e
            eDefrag.weight = 0
            _ = tryMerge(a, b, eDefrag, defrag: true)
            let r = find(a)
            let rs = size[Int(r)]
            // Insert keeping the lowest chain last (taken first).
            var list = buckets[rs]
            let pos = list.firstIndex { low[Int($0)] < low[Int(r)] } ?? list.count
            list.insert(r, at: pos)
            buckets[rs] = list
            tree.increment(rs, by: 1)
        }
    }

    // MARK: Result

    mutating func finish(members: [Bool], oversize: [Int32], baseSize: Int, coreLimit: Int) -> Clustering {
        let n = graph.chainCount
        var reps: [Int32] = []
        var clusterOfRep = [Int32](repeating: -1, count: n + 1)
        // Clusters numbered by their lowest chain (address order).
        for c in 0..<n {
            let r = find(Int32(c))
            if r != core && clusterOfRep[Int(r)] < 0 {
                clusterOfRep[Int(r)] = Int32(reps.count)
                reps.append(r)
            }
        }
        var chainCluster = [Int32](repeating: -1, count: n)
        var state = [ChainState](repeating: .cold, count: n)
        var clusterChains = [[Int32]](repeating: [], count: reps.count)
        let oversizeSet = Set(oversize)
        for c in 0..<n {
            let r = find(Int32(c))
            if r == core {
                state[c] = members[c] ? .core : oversizeSet.contains(Int32(c)) ? .oversize : .hot
            } else {
                let k = clusterOfRep[Int(r)]
                chainCluster[c] = k
                clusterChains[Int(k)].append(Int32(c))
            }
        }
        return Clustering(chainCluster: chainCluster, chainState: state, clusterSize: reps.map { Int32(size[Int($0)]) },
                          clusterChains: clusterChains, residentCodeBytes: size[Int(core)], coreBaseBytes: baseSize,
                          coreLimit: coreLimit, oversizeChains: oversize, events: events, parameters: params)
    }

    // MARK: Heap (max by weight, then lowest chains first)

    @inline(__always)
    static func before(_ x: HeapEntry, _ y: HeapEntry, core: Int32) -> Bool {
        x.key != y.key ? x.key < y.key : x.tie < y.tie
    }

    mutating func push(_ e: HeapEntry) {
        heap.append(e)
        let core = self.core
        heap.withUnsafeMutableBufferPointer { h in
            var i = h.count - 1
            while i > 0 {
                let p = (i - 1) >> 2
                guard ReferenceCoalescer.before(e, h[p], core: core) else { break }
                h[i] = h[p]
                i = p
            }
            h[i] = e
        }
    }

    mutating func heapify() {
        let core = self.core
        heap.withUnsafeMutableBufferPointer { h in
            guard h.count > 1 else { return }
            var i = (h.count - 2) >> 2
            while i >= 0 {
                ReferenceCoalescer.siftDown(h, i, core: core)
                i -= 1
            }
        }
    }

    /// A 4-ary heap: half the levels of a binary one, and the four children share a
    /// cache line or two.
    @inline(__always)
    static func siftDown(_ h: UnsafeMutableBufferPointer<HeapEntry>, _ start: Int, core: Int32) {
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
                if before(h[k], h[m], core: core) { m = k }
                k += 1
            }
            guard before(h[m], e, core: core) else { break }
            h[i] = h[m]
            i = m
        }
        h[i] = e
    }

    mutating func pop() -> HeapEntry? {
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            let core = self.core
            heap.withUnsafeMutableBufferPointer { ReferenceCoalescer.siftDown($0, 0, core: core) }
        }
        return top
    }
}

/// Counts per size with a segment tree, answering "smallest non-empty size" and "largest
/// non-empty size at most x" in logarithmic time.
struct ReferenceSizeTree {
    let n: Int
    var size: Int
    var t: [Int32]

    init(count: Int) {
        n = count
        size = 1
        while size < count { size <<= 1 }
        t = [Int32](repeating: 0, count: 2 * size)
    }

    mutating func increment(_ i: Int, by d: Int32) {
        var p = i + size
        while p >= 1 { t[p] += d; p >>= 1 }
    }

    func smallestNonEmpty() -> Int? {
        guard t[1] > 0 else { return nil }
        var p = 1
        while p < size { p = t[2 * p] > 0 ? 2 * p : 2 * p + 1 }
        return p - size
    }

    func largestNonEmpty(atMost x: Int) -> Int? {
        guard x >= 0 else { return nil }
        return search(1, 0, size - 1, min(x, n - 1))
    }

    private func search(_ p: Int, _ lo: Int, _ hi: Int, _ x: Int) -> Int? {
        if lo > x || t[p] == 0 { return nil }
        if lo == hi { return lo }
        let mid = (lo + hi) / 2
        if let r = search(2 * p + 1, mid + 1, hi, x) { return r }
        return search(2 * p, lo, mid, x)
    }
}
