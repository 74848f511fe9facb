import Foundation

/// One configuration the optimiser tried, with what it costs and what paging costs at
/// the same memory.
public struct FrontierPoint: Codable, Sendable, Equatable {
    public var bufferSize: Int
    public var buffers: Int
    public var residentBudget: Int
    public var clusters: Int
    /// Total memory of the rewritten image (`memory.exact` says whether measured).
    public var totalMemory: Int
    public var memory: MemoryAccount
    public var reductionPercent: Double
    /// Per training phase: loads, estimated cost, and paging of the original layout in
    /// as many page frames as `totalMemory` holds.
    public var phases: [PhaseFigures]
    /// Held-out phases (`--evaluate`), replayed against the same configuration.
    public var evaluations: [PhaseFigures]
    /// Sum of the training phases' estimated costs.
    public var cost: Double
    public var pagingCost: Double
    /// Figure 2 (the paper's method, γ 0–10 %, the configuration's buffer) at no more than
    /// this memory: its best cost, or nil when none fits.
    public var figure2Cost: Double?
    public var figure2Memory: Int?
}

/// Loads and cost of one phase, with the yardsticks beside them.
public struct PhaseFigures: Codable, Sendable, Equatable {
    public var phase: String
    public var loads: UInt64
    public var estimatedCostSeconds: Double
    public var pagingLoads: UInt64
    public var pagingCostSeconds: Double
    /// Loads Belady's optimal replacement needs for the same clusters and buffers: the
    /// best any replacement policy could do for this grouping.
    public var beladyLoads: UInt64
    /// Functions this phase ran that training never did (held-out phases).
    public var unseenFunctions: Int?

    /// How many times fewer loads than paging (∞ when none are needed, nil when paging needs none either).
    public var pagingRatio: Double? {
        if loads == 0 { return pagingLoads == 0 ? nil : .infinity }
        return Double(pagingLoads) / Double(loads)
    }
}

/// Searches configurations of the affinity layout (`AffinityLayout`) — buffer size,
/// number of buffers and resident budget, core as configured — for the frontier of total
/// memory against estimated load cost on the training profiles. Every configuration is
/// judged by exact replay under the manager's rules; memory is estimated during the
/// search and measured on the rewriter's layout for the points reported.
public final class Optimizer: @unchecked Sendable {
    public let session: Session
    public let model: CostModel
    public let held: [Profile]
    let heldCompact: [[Int32]]
    /// The training phases whose cost the frontier minimises (all when empty): a kernel is
    /// judged on its workload, not on the boot that runs once.
    public var costPhases: Set<String> = []

    public struct Options: Sendable {
        public var bufferSizes: [Int]
        public var bufferCounts: [Int]
        /// Resident budgets as fractions of the executed code.
        public var budgetFractions: [Double]
        public init(bufferSizes: [Int] = [1024, 2048, 4096], bufferCounts: [Int] = [1, 2, 4, 8],
                    budgetFractions: [Double] = [0, 1.0 / 64, 1.0 / 32, 1.0 / 16, 1.0 / 8, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1, 1.25]) {
            self.bufferSizes = bufferSizes; self.bufferCounts = bufferCounts; self.budgetFractions = budgetFractions
        }
    }

    public init(session: Session, evaluate: [Profile] = []) {
        self.session = session
        model = CostModel(session: session)
        held = evaluate
        heldCompact = evaluate.map(CostModel.compact)
    }

    /// Every configuration tried, in the order tried; `progress(done, total)` after each.
    /// Stops early (keeping what it has) when `shouldStop` says so.
    public func search(_ o: Options = Options(), progress: @escaping @Sendable (Int, Int) -> Void = { _, _ in },
                       shouldStop: @escaping @Sendable () -> Bool = { false }) -> [FrontierPoint] {
        let s = session
        let executed = s.executedCodeBytes
        var budgets = o.budgetFractions.map { Int((Double(executed) * $0).rounded()) }
        budgets = Array(Set(budgets)).sorted()
        let sizes = o.bufferSizes.filter { $0 >= Rewriter.minimumBufferSize }
        let total = budgets.count * sizes.count * o.bufferCounts.count
        // Each (budget, buffer size) is one layout, replayed for every buffer count; the
        // layouts are independent, so they run on every core. Paging and Belady, which
        // only the reported points need, wait for `finish`.
        let jobs = budgets.flatMap { b in sizes.map { (b, $0) } }
        final class Results: @unchecked Sendable {
            var points: [[FrontierPoint]]
            var done = 0
            init(_ n: Int) { points = Array(repeating: [], count: n) }
        }
        let results = Results(jobs.count)
        let lock = NSLock()
        let base = s.config
        _ = (s.trainingSequences, s.chainFunctions)  // computed once, before the threads
        DispatchQueue.concurrentPerform(iterations: jobs.count) { j in
            lock.lock(); let stop = shouldStop(); lock.unlock()
            if stop { return }
            let (b, bs) = jobs[j]
            var cfg = base
            cfg.method = .affinity; cfg.residentBudget = b; cfg.bufferSize = bs
            let c = s.cluster(cfg, coreChains: s.coreChains)
            var mine: [FrontierPoint] = []
            for n in o.bufferCounts {
                cfg.buffers = n
                mine.append(evaluate(c, config: cfg, exactMemory: false, yardsticks: false))
            }
            lock.lock()
            results.points[j] = mine
            results.done += mine.count
            progress(results.done, total)
            lock.unlock()
        }
        return results.points.flatMap { $0 }
    }

    /// The points no other point beats on both memory and cost, by increasing memory.
    public static func frontier(_ points: [FrontierPoint]) -> [FrontierPoint] {
        let sorted = points.sorted { $0.totalMemory != $1.totalMemory ? $0.totalMemory < $1.totalMemory : $0.cost < $1.cost }
        var out: [FrontierPoint] = []
        for p in sorted where out.last.map({ p.cost < $0.cost }) ?? true { out.append(p) }
        return out
    }

    /// Figures for one clustering under `cfg` (which must be the configuration that made
    /// it). With `exactMemory`, memory is measured on the rewriter's layout when the image
    /// can be rewritten.
    public func evaluate(_ c: Clustering, config cfg: Config, exactMemory: Bool, yardsticks: Bool = true) -> FrontierPoint {
        let s = session
        let memory: MemoryAccount
        if exactMemory, (try? s.update(cfg)) != nil {
            memory = s.memory(c)
        } else {
            memory = MemoryAccount.estimate(session: s, clustering: c, why: "during the search", config: cfg)
        }
        var phases: [PhaseFigures] = []
        for (i, p) in s.profiles.enumerated() where p.hasSequence {
            phases.append(figures(name: p.name, profile: p, compact: model.compact[i], c, cfg, memory: memory.total, yardsticks: yardsticks, writtenSizes: memory.clusterBytes))
        }
        var evals: [PhaseFigures] = []
        for (i, p) in held.enumerated() where p.hasSequence {
            var f = figures(name: p.name, profile: p, compact: heldCompact[i], c, cfg, memory: memory.total, yardsticks: yardsticks, writtenSizes: memory.clusterBytes)
            if yardsticks { f.unseenFunctions = model.unseen(p).count }
            evals.append(f)
        }
        let code = s.program.codeBytes
        return FrontierPoint(
            bufferSize: cfg.bufferSize, buffers: cfg.buffers, residentBudget: cfg.residentBudget, clusters: c.clusterCount,
            totalMemory: memory.total, memory: memory,
            reductionPercent: code == 0 ? 0 : ((Double(code - memory.total) / Double(code)) * 1000).rounded() / 10,
            phases: phases, evaluations: evals,
            cost: counted(phases).reduce(0) { $0 + $1.estimatedCostSeconds }, pagingCost: counted(phases).reduce(0) { $0 + $1.pagingCostSeconds },
            figure2Cost: nil, figure2Memory: nil)
    }

    func counted(_ phases: [PhaseFigures]) -> [PhaseFigures] {
        costPhases.isEmpty ? phases : phases.filter { costPhases.contains($0.phase) }
    }

    func figures(name: String, profile p: Profile, compact: [Int32], _ c: Clustering, _ cfg: Config, memory: Int, yardsticks: Bool, writtenSizes: [Int]? = nil) -> PhaseFigures {
        let loads = CostModel.replay(compact, chainCluster: c.chainCluster, clusters: c.clusterCount, buffers: cfg.buffers)
        let pc = CostModel.summarise(phase: name, exact: true, loads: loads, clustering: c, config: cfg, sizes: writtenSizes)
        let paging = yardsticks ? model.paging(p, totalMemory: memory) : nil
        let belady = yardsticks ? Belady.loads(compact, chainCluster: c.chainCluster, buffers: cfg.buffers) : 0
        return PhaseFigures(phase: name, loads: pc.loads, estimatedCostSeconds: pc.estimatedCostSeconds,
                            pagingLoads: paging?.loads ?? 0, pagingCostSeconds: paging?.estimatedCostSeconds ?? 0, beladyLoads: belady, unseenFunctions: nil)
    }

    /// Measures the chosen points exactly (memory on the rewriter's layout, paging at that
    /// memory) and puts Figure 2's best cost at no more memory beside each.
    public func finish(_ points: [FrontierPoint]) -> [FrontierPoint] {
        let s = session
        let saved = s.config
        defer { try? s.update(saved) }
        // Figure 2 at the paper's settings over γ, with the configured buffer.
        var fig2: [(memory: Int, cost: Double)] = []
        for g in stride(from: 0.0, through: 10.0, by: 2.0) {
            var cfg = saved
            cfg.method = .figure2; cfg.gamma = g
            guard (try? s.update(cfg)) != nil else { continue }
            let c = s.cluster(recordEvents: false)
            let m = s.memory(c).total
            let cost = model.costs(c).reduce(0) { $0 + ($1.exact && (costPhases.isEmpty || costPhases.contains($1.phase)) ? $1.estimatedCostSeconds : 0) }
            fig2.append((m, cost))
        }
        return points.map { p in
            var cfg = saved
            cfg.method = .affinity; cfg.residentBudget = p.residentBudget; cfg.bufferSize = p.bufferSize; cfg.buffers = p.buffers
            try? s.update(cfg)
            let c = s.cluster(recordEvents: false)
            var q = evaluate(c, config: cfg, exactMemory: true)
            if let best = fig2.filter({ $0.memory <= q.totalMemory }).min(by: { $0.cost < $1.cost }) {
                q.figure2Cost = best.cost
                q.figure2Memory = best.memory
            }
            return q
        }
    }

    /// The configuration of a point, on top of the session's.
    public func config(of p: FrontierPoint, base: Config) -> Config {
        var cfg = base
        cfg.method = .affinity; cfg.residentBudget = p.residentBudget; cfg.bufferSize = p.bufferSize; cfg.buffers = p.buffers
        return cfg
    }
}

/// Belady's optimal replacement (evict the cluster needed furthest in the future) over
/// the clusters a trace enters: the fewest loads any replacement policy could need for a
/// grouping and a number of buffers.
public enum Belady {
    public static func loads(_ sequence: [Int32], chainCluster: [Int32], buffers: Int) -> UInt64 {
        // The cluster entries, as the replay sees them: resident code skipped, repeats folded.
        var seq: [Int32] = []
        var last: Int32 = -1
        for c in sequence {
            let k = chainCluster[Int(c)]
            if k < 0 || k == last { continue }
            seq.append(k)
            last = k
        }
        guard !seq.isEmpty else { return 0 }
        var nextUse = [Int](repeating: Int.max, count: seq.count)
        var seen: [Int32: Int] = [:]
        for i in stride(from: seq.count - 1, through: 0, by: -1) {
            nextUse[i] = seen[seq[i]] ?? Int.max
            seen[seq[i]] = i
        }
        var holds: [Int32] = []
        var next: [Int] = []   // next use of each held cluster
        var loads: UInt64 = 0
        for i in 0..<seq.count {
            let k = seq[i]
            if let j = holds.firstIndex(of: k) {
                next[j] = nextUse[i]
                continue
            }
            loads += 1
            if holds.count < max(1, buffers) {
                holds.append(k); next.append(nextUse[i])
            } else {
                var victim = 0
                for j in 1..<holds.count where next[j] > next[victim] { victim = j }
                holds[victim] = k; next[victim] = nextUse[i]
            }
        }
        return loads
    }
}
