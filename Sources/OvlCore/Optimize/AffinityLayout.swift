/// The clustering method that competes with demand paging, beside Figure 2 (which stays
/// exactly as the paper has it). Figure 2 groups code by the weight of direct edges, so
/// it cannot see that two pieces of code alternate with resident code in between, and it
/// scatters the code no profile ran over clusters by size alone. This method:
///
/// 1. keeps core (and chains larger than the buffer) resident, then the executed chains
///    with the most entries per byte, up to `residentBudget` bytes (a knapsack by density:
///    a chain entered often for its size would cost a load each time it is entered);
/// 2. groups the remaining executed chains by *temporal affinity*: walking the training
///    traces with resident code taken out, every chain entered is tied to the last
///    `window` distinct chains entered before it (closer ones more strongly), and the
///    heaviest ties are joined first while the joined cluster fits the buffer — the
///    temporal relationship graph of the code-overlay literature;
/// 3. packs what affinity left apart in order of first use, so code that runs once in
///    sequence (start-up) loads in few clusters;
/// 4. gives the code no training profile ran a deliberate fallback: first into the spare
///    room of the executed cluster it is most tied to by static transfers (the cold path
///    of a function that ran), then in address order, whole functions together where they
///    fit, so unseen code behaves like paging of the original layout rather than one
///    function per cluster.
///
/// Cluster sizes follow Figure 1 (instructions plus the stub bytes of transfers that leave
/// the cluster) and never exceed the buffer. Deterministic: ties go to lower chains.
public enum AffinityLayout {
    /// How many distinct recently entered chains a chain is tied to.
    public static let window = 8

    public static func run(session s: Session, residentBudget: Int, bufferSize: Int) -> Clustering {
        run(graph: s.graph, sequences: s.trainingSequences, coreChains: s.coreChains, chainFunction: s.chainFunctions,
            residentBudget: residentBudget, bufferSize: bufferSize, gamma: s.config.gamma)
    }

    /// The method on its inputs: the cluster graph (sizes and stubs), the training traces as
    /// chain sequences, core, and each chain's function (to keep functions together).
    public static func run(graph g: ClusterGraph, sequences: [[Int32]], coreChains: [Bool], chainFunction: [Int32],
                           residentBudget: Int, bufferSize: Int, gamma: Double = 0) -> Clustering {
        let n = g.chainCount
        let own = (0..<n).map { Int(g.chainBytes[$0]) + Int(g.chainIndirectStubBytes[$0]) }
        // Entries per chain, from the traces (or the graph's heat for edge profiles).
        var entries = [UInt64](repeating: 0, count: n)
        if sequences.isEmpty {
            for c in 0..<n { entries[c] = g.chainHeat[c] }
        } else {
            for seq in sequences { for c in seq { entries[Int(c)] &+= 1 } }
        }
        // Static transfers of each chain, for stub sizes.
        var incident = [[Int32]](repeating: [], count: n)
        for e in 0..<g.edgeCount {
            incident[Int(g.edgeA[e])].append(Int32(e))
            if g.edgeB[e] != g.edgeA[e] { incident[Int(g.edgeB[e])].append(Int32(e)) }
        }
        /// Stub bytes of c's transfers to d, as Figure 1 counts them when they sit apart
        /// (`dResident`: a jump into resident code needs none).
        func stubBytes(from c: Int, edge e: Int, dResident: Bool) -> Int {
            if Int(g.edgeA[e]) == c {
                return Int(g.edgeCallAB[e]) + (dResident ? 0 : Int(g.edgeJumpAB[e]))
            }
            return Int(g.edgeCallBA[e]) + (dResident ? 0 : Int(g.edgeJumpBA[e]))
        }
        func other(_ e: Int, _ c: Int) -> Int { Int(g.edgeA[e]) == c ? Int(g.edgeB[e]) : Int(g.edgeA[e]) }

        // 1. Resident: core, oversize, then by entries per byte.
        var resident = coreChains
        var state = [ChainState](repeating: .cold, count: n)
        var oversize: [Int32] = []
        for c in 0..<n where resident[c] { state[c] = .core }
        // A chain's size alone in a cluster (every transfer out of it a stub).
        func alone(_ c: Int) -> Int {
            var sz = own[c]
            for e in incident[c] where other(Int(e), c) != c { sz += stubBytes(from: c, edge: Int(e), dResident: resident[other(Int(e), c)]) }
            return sz
        }
        for c in 0..<n where !resident[c] && alone(c) > bufferSize {
            resident[c] = true; state[c] = .oversize; oversize.append(Int32(c))
        }
        let candidates = (0..<n).filter { !resident[$0] && entries[$0] > 0 }.sorted { a, b in
            // entries[a] / own[a] > entries[b] / own[b], without division.
            let l = Double(entries[a]) * Double(max(1, own[b])), r = Double(entries[b]) * Double(max(1, own[a]))
            return l != r ? l > r : a < b
        }
        var used = 0
        for c in candidates {
            guard used + own[c] <= residentBudget else { continue }
            used += own[c]
            resident[c] = true
            state[c] = .hot
        }

        // Union-find over chains with each root's Figure 1 size and its stub bytes to others.
        var parent = (0..<n).map { Int32($0) }
        func find(_ x: Int) -> Int {
            var r = x
            while Int(parent[r]) != r { r = Int(parent[r]) }
            var y = x
            while Int(parent[y]) != r { let nx = Int(parent[y]); parent[y] = Int32(r); y = nx }
            return r
        }
        var size = [Int](repeating: 0, count: n)
        /// Stub bytes between a root and each other cold root it transfers to or from (both
        /// directions summed: joining the two saves them all).
        var link = [[Int32: Int32]](repeating: [:], count: n)
        for c in 0..<n where !resident[c] {
            size[c] = alone(c)
            for e in incident[c] {
                let d = other(Int(e), c)
                guard d != c, !resident[d] else { continue }
                link[c][Int32(d), default: 0] += Int32(stubBytes(from: c, edge: Int(e), dResident: false))
            }
        }
        // Make the links symmetric (c's bytes to d plus d's bytes to c).
        for c in 0..<n where !resident[c] {
            for (d, _) in link[c] where Int(d) > c {
                let both = (link[c][d] ?? 0) + (link[Int(d)][Int32(c)] ?? 0)
                link[c][d] = both
                link[Int(d)][Int32(c)] = both
            }
        }
        func joinedSize(_ a: Int, _ b: Int) -> Int { size[a] + size[b] - Int(link[a][Int32(b)] ?? 0) }
        func join(_ a0: Int, _ b0: Int) {
            var a = a0, b = b0
            if link[a].count < link[b].count { swap(&a, &b) }
            size[a] = joinedSize(a, b)
            parent[b] = Int32(a)
            let moved = link[b]
            link[b] = [:]
            link[a][Int32(b)] = nil
            for (x, bytes) in moved where Int(x) != a {
                link[a][x, default: 0] += bytes
                link[Int(x)][Int32(b)] = nil
                link[Int(x)][Int32(a), default: 0] += bytes
            }
        }
        func tryJoin(_ x: Int, _ y: Int) -> Bool {
            let a = find(x), b = find(y)
            guard a != b, joinedSize(a, b) <= bufferSize else { return false }
            join(a, b)
            return true
        }

        // 2. Temporal affinity among the cold executed chains.
        var affinity: [UInt64: UInt64] = [:]
        var firstUse = [Int](repeating: Int.max, count: n)
        var clock = 0
        for seq in sequences {
            var recent: [Int32] = []
            recent.reserveCapacity(window + 1)
            for c in seq {
                let ci = Int(c)
                guard !resident[ci] else { continue }
                if recent.first == c { continue }
                if firstUse[ci] == Int.max { firstUse[ci] = clock }
                clock += 1
                for (rank, y) in recent.enumerated() where y != c {
                    let key = UInt64(UInt32(min(c, y))) << 32 | UInt64(UInt32(max(c, y)))
                    affinity[key, default: 0] &+= UInt64(window - rank)
                }
                if let i = recent.firstIndex(of: c) { recent.remove(at: i) }
                recent.insert(c, at: 0)
                if recent.count > window { recent.removeLast() }
            }
        }
        let ties = affinity.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        // Ties seen only once mean nothing more than first-use order already says.
        for (key, w) in ties where w > UInt64(window) {
            _ = tryJoin(Int(key >> 32), Int(key & 0xffff_ffff))
        }

        // 3. First-use packing of what affinity left apart.
        let executedCold = (0..<n).filter { !resident[$0] && firstUse[$0] != Int.max }.sorted { firstUse[$0] != firstUse[$1] ? firstUse[$0] < firstUse[$1] : $0 < $1 }
        var current = -1
        for c in executedCold {
            let r = find(c)
            if current >= 0 && find(current) != r && tryJoin(current, r) { continue }
            if current < 0 || find(current) != r { current = r }
        }
        // Edge profiles (no order): executed chains not in any sequence pack by heat.
        var executedRoots = Set<Int>()
        for c in 0..<n where !resident[c] && (firstUse[c] != Int.max || entries[c] > 0) { executedRoots.insert(find(c)) }

        // 4. Code no profile ran: into the executed cluster it is most tied to, then by address.
        let unseen = (0..<n).filter { !resident[$0] && firstUse[$0] == Int.max && entries[$0] == 0 }
        for c in unseen {
            var best = -1, bestBytes: Int32 = 0
            for (d, bytes) in link[find(c)] {
                let r = find(Int(d))
                guard executedRoots.contains(r), bytes > bestBytes || (bytes == bestBytes && r < best) else { continue }
                if joinedSize(find(c), r) <= bufferSize { best = r; bestBytes = bytes }
            }
            if best >= 0 {
                let a = find(c)
                join(best, a)
                let r = find(c)
                executedRoots.remove(best); executedRoots.remove(a); executedRoots.insert(r)
            }
        }
        current = -1
        var i = 0
        while i < unseen.count {
            let c = unseen[i]
            if executedRoots.contains(find(c)) { i += 1; continue }
            // The rest of this function's unseen chains: start a fresh cluster for them when
            // they fit in one but not in the room left.
            var j = i
            var fnBytes = 0
            while j < unseen.count && chainFunction[unseen[j]] == chainFunction[c] { fnBytes += own[unseen[j]]; j += 1 }
            if current >= 0, find(current) != find(c), fnBytes <= bufferSize, size[find(current)] + fnBytes > bufferSize {
                current = -1
            }
            for k in i..<j where !executedRoots.contains(find(unseen[k])) {
                let r = find(unseen[k])
                if current >= 0 && find(current) != r && tryJoin(current, r) { continue }
                if current < 0 || find(current) != find(unseen[k]) { current = find(unseen[k]) }
            }
            i = j
        }

        // Number clusters by their lowest chain, and measure them as Figure 1 does.
        var clusterOf = [Int32](repeating: -1, count: n)
        var chainCluster = [Int32](repeating: -1, count: n)
        var clusterChains: [[Int32]] = []
        for c in 0..<n where !resident[c] {
            let r = find(c)
            if clusterOf[r] < 0 { clusterOf[r] = Int32(clusterChains.count); clusterChains.append([]) }
            chainCluster[c] = clusterOf[r]
            clusterChains[Int(clusterOf[r])].append(Int32(c))
        }
        let sizes = Figure1.sizes(graph: g, chainCluster: chainCluster, clusters: clusterChains.count)
        var coreBase = 0
        for c in 0..<n where state[c] == .core { coreBase += own[c] }
        return Clustering(chainCluster: chainCluster, chainState: state, clusterSize: sizes.clusters,
                          clusterChains: clusterChains, residentCodeBytes: sizes.resident, coreBaseBytes: coreBase,
                          coreLimit: coreBase + residentBudget, oversizeChains: oversize, events: [],
                          parameters: CoalescerParameters(gamma: gamma, bufferSize: bufferSize, coreChains: coreChains, recordEvents: false))
    }
}

/// Figure 1's sizes for any assignment of chains to clusters: a unit's instructions plus
/// the stub bytes of its transfers to other units (calls always; jumps unless into
/// resident code).
public enum Figure1 {
    public static func sizes(graph g: ClusterGraph, chainCluster: [Int32], clusters: Int) -> (clusters: [Int32], resident: Int) {
        var out = [Int](repeating: 0, count: clusters + 1)  // slot 0: resident
        for c in 0..<g.chainCount {
            out[Int(chainCluster[c]) + 1] += Int(g.chainBytes[c]) + Int(g.chainIndirectStubBytes[c])
        }
        for e in 0..<g.edgeCount {
            let ka = chainCluster[Int(g.edgeA[e])], kb = chainCluster[Int(g.edgeB[e])]
            guard ka != kb else { continue }
            out[Int(ka) + 1] += Int(g.edgeCallAB[e]) + (kb < 0 ? 0 : Int(g.edgeJumpAB[e]))
            out[Int(kb) + 1] += Int(g.edgeCallBA[e]) + (ka < 0 ? 0 : Int(g.edgeJumpBA[e]))
        }
        return (out.dropFirst().map { Int32($0) }, out[0])
    }
}
