import COverlayRules
import Foundation

// What the explorer asks of the engine beyond `Session`'s own API: loads attributed to
// the chain whose entry caused them, the cluster graph after coalescing, the core set a
// configuration would give without applying it, and pinning or unpinning a function as
// configuration edits. All of it is engine logic; the explorer only shows the results.

// MARK: - Loads attributed to chains

/// One phase's cost with each load charged to the chain whose entry caused it.
public struct AttributedPhaseCost: Sendable {
    /// Table 2's columns for the phase, equal to `CostModel.cost(phase:_:withPaging: false)`.
    public var cost: PhaseCost
    /// Loads caused by entering each chain (by chain id); zero for resident chains.
    public var chainLoads: [UInt64]
}

extension CostModel {
    /// Table 2 for every phase, as `costs(_:)` computes it without the paging baseline, and
    /// which chain's entry caused each load. `config` gives the buffers and the flash model
    /// (the session's own configuration when nil).
    public func attributedCosts(_ c: Clustering, config: Config? = nil) -> [AttributedPhaseCost] {
        let cfg = config ?? session.config
        let traced = session.profiles.indices.filter { session.profiles[$0].hasSequence }
        var replayed = replay(phases: traced, c, buffers: cfg.buffers, byChain: true).makeIterator()
        return session.profiles.indices.map { i in
            let p = session.profiles[i]
            let chainLoads = p.hasSequence ? replayed.next()! : CostModel.edgeBoundByChain(p, chainCluster: c.chainCluster)
            var loads = [UInt64](repeating: 0, count: c.clusterCount)
            for (ch, n) in chainLoads.enumerated() where n > 0 {
                loads[Int(c.chainCluster[ch])] += n
            }
            let cost = CostModel.summarise(phase: p.name, exact: p.hasSequence, loads: loads, clustering: c, config: cfg,
                                           sizes: session.memory(c).clusterBytes)
            return AttributedPhaseCost(cost: cost, chainLoads: chainLoads)
        }
    }

    /// `edgeBound` with each load charged to the chain entered.
    public static func edgeBoundByChain(_ p: Profile, chainCluster: [Int32]) -> [UInt64] {
        var loads = [UInt64](repeating: 0, count: chainCluster.count)
        for (key, w) in p.chainEdges {
            let a = Int32(truncatingIfNeeded: key >> 32), b = Int32(truncatingIfNeeded: key & 0xffff_ffff)
            let kb = chainCluster[Int(b)]
            if kb >= 0 && chainCluster[Int(a)] != kb { loads[Int(b)] += w }
        }
        for (c, w) in p.outsideEntries where chainCluster[Int(c)] >= 0 {
            loads[Int(c)] += w
        }
        return loads
    }

    /// Total loads over every phase when `c` runs, without the per-chain detail (what a
    /// what-if question needs).
    public func totalLoads(_ c: Clustering, config: Config) -> (loads: UInt64, seconds: Double) {
        var total: UInt64 = 0
        var seconds = 0.0
        let all = loads(phases: Array(session.profiles.indices), c, buffers: config.buffers)
        for i in session.profiles.indices {
            let p = session.profiles[i]
            let loads = all[i]
            let pc = CostModel.summarise(phase: p.name, exact: p.hasSequence, loads: loads, clustering: c, config: config)
            total += pc.loads
            seconds += pc.estimatedCostSeconds
        }
        return (total, seconds)
    }
}

// MARK: - Core sets without applying them

extension Session {
    /// The core set and chain membership `config` would give, leaving the session as it is.
    public func coreMembership(for config: Config) -> (core: CoreSet, chains: [Bool]) {
        let core = CoreSet.resolve(config, program: program)
        return (core, Session.chainMembership(core, program: program, chains: chains))
    }

    /// `cluster(recordEvents:)` on the session's configuration that gives up, returning
    /// nil, once `stop` answers true (`Coalescer.runStoppable`); `keepPrepared` as for
    /// `Coalescer.run`.
    public func cluster(recordEvents: Bool, keepPrepared: Bool, stop: @escaping @Sendable () -> Bool) -> Clustering? {
        switch config.method {
        case .figure2: return Coalescer.runStoppable(graph, parameters(recordEvents: recordEvents), keepPrepared: keepPrepared, stop: stop)
        case .affinity: return stop() ? nil : cluster(recordEvents: recordEvents)
        }
    }

    /// Clusters with `config`'s method without applying it to the session (γ, buffer size,
    /// core set and defragmentation are taken from `config`).
    /// `keepPrepared: false` for one-off questions (`Coalescer.run`).
    public func cluster(_ config: Config, coreChains: [Bool], recordEvents: Bool = false, keepPrepared: Bool = true) -> Clustering {
        switch config.method {
        case .figure2:
            return Coalescer.run(graph, CoalescerParameters(gamma: config.gamma, bufferSize: config.bufferSize, coreChains: coreChains,
                                                            defragmentIntoCore: config.defragmentIntoCore, recordEvents: recordEvents),
                                 keepPrepared: keepPrepared)
        case .affinity:
            return AffinityLayout.run(graph: graph, sequences: trainingSequences, coreChains: coreChains, chainFunction: chainFunctions,
                                      residentBudget: config.residentBudget, bufferSize: config.bufferSize, gamma: config.gamma)
        }
    }
}

// MARK: - Pinning as configuration edits

extension Config {
    /// The configuration with function `name` made core: an exclusion naming it exactly is
    /// dropped first (so a glob or the preset covers it again), and if that is not enough
    /// the name is appended to `core.functions`.
    public func pinning(_ name: String, in program: Program) -> Config {
        var c = self
        c.coreExclude.removeAll { $0 == name }
        if !c.covers(name, in: program) { c.coreFunctions.append(name) }
        return c
    }

    /// The configuration with function `name` no longer core: an entry naming it exactly in
    /// `core.functions` is dropped, and if a glob or the preset still covers it, the name
    /// is appended to `core.exclude`. Functions core for correctness stay core whatever
    /// the configuration says (`CoreSet.reason`).
    public func unpinning(_ name: String, in program: Program) -> Config {
        var c = self
        c.coreFunctions.removeAll { $0 == name }
        if c.covers(name, in: program) { c.coreExclude.append(name) }
        return c
    }

    /// Whether the configuration makes the function named `name` core.
    func covers(_ name: String, in program: Program) -> Bool {
        let core = CoreSet.resolve(self, program: program)
        let matches = program.functionIndices(named: name)
        return !matches.isEmpty && matches.allSatisfy { core.reason(Int32($0))?.origin == .configured }
    }
}

// MARK: - The cluster graph after coalescing

/// The clusters of a clustering as a graph: one node per overlay cluster plus one for
/// all resident code, an edge wherever chain edges cross between two nodes, weighted by
/// the sum of their profile weights.
public struct ClusterAdjacency: Sendable {
    /// Node of the resident code (core, hot and oversize chains): `clusterCount`.
    public let residentNode: Int32
    /// Neighbours of each node, heaviest edge first (ties: lower node first).
    public let neighbours: [[(node: Int32, weight: UInt64)]]
    /// Weight of the chain edges inside each node.
    public let internalWeight: [UInt64]

    public var nodeCount: Int { neighbours.count }

    public init(graph: ClusterGraph, clustering c: Clustering) {
        let k = c.clusterCount
        residentNode = Int32(k)
        let n = k + 1
        func node(_ chain: Int32) -> Int32 {
            let x = c.chainCluster[Int(chain)]
            return x < 0 ? Int32(k) : x
        }
        var inner = [UInt64](repeating: 0, count: n)
        // Bucket crossing edges by their lower node, then sum per neighbour with a
        // scratch array: linear in the edges, no hashing.
        var degree = [Int](repeating: 0, count: n + 1)
        var crossing: [(Int32, Int32, UInt64)] = []
        crossing.reserveCapacity(graph.edgeCount)
        for e in 0..<graph.edgeCount {
            let a = node(graph.edgeA[e]), b = node(graph.edgeB[e])
            let w = graph.edgeWeight[e]
            if a == b { inner[Int(a)] &+= w; continue }
            crossing.append((a, b, w))
            degree[Int(a)] += 1
            degree[Int(b)] += 1
        }
        var start = [Int](repeating: 0, count: n + 1)
        for i in 0..<n { start[i + 1] = start[i] + degree[i] }
        var fill = start
        var other = [Int32](repeating: 0, count: start[n])
        var weight = [UInt64](repeating: 0, count: start[n])
        for (a, b, w) in crossing {
            other[fill[Int(a)]] = b; weight[fill[Int(a)]] = w; fill[Int(a)] += 1
            other[fill[Int(b)]] = a; weight[fill[Int(b)]] = w; fill[Int(b)] += 1
        }
        var scratch = [UInt64](repeating: 0, count: n)
        var seen = [Bool](repeating: false, count: n)
        var lists = [[(node: Int32, weight: UInt64)]](repeating: [], count: n)
        for x in 0..<n {
            var touched: [Int32] = []
            for i in start[x]..<start[x + 1] {
                let y = Int(other[i])
                if !seen[y] { seen[y] = true; touched.append(Int32(y)) }
                scratch[y] &+= weight[i]
            }
            var list = touched.map { (node: $0, weight: scratch[Int($0)]) }
            for y in touched { scratch[Int(y)] = 0; seen[Int(y)] = false }
            list.sort { $0.weight != $1.weight ? $0.weight > $1.weight : $0.node < $1.node }
            lists[x] = list
        }
        neighbours = lists
        internalWeight = inner
    }

    /// The weight of the edge between two nodes (0 when there is none).
    public func weight(_ a: Int32, _ b: Int32) -> UInt64 {
        neighbours[Int(a)].first { $0.node == b }?.weight ?? 0
    }
}
