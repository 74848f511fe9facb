import Foundation
import OvlCore

/// What does not change while the explorer runs: the program, its chains, the cluster
/// graph and the profiles, with the per-function figures the views sort by. Immutable
/// once built, so the input loop reads it while the engine works on another thread.
public final class ExplorerModel: @unchecked Sendable {
    public let program: Program
    public let chains: Chains
    public let graph: ClusterGraph
    public let imagePath: String
    public let imageName: String
    /// Profile names as given, and shortened for the header (`sortcb.id.trace` → `id`).
    public let phaseNames: [String]
    public let phaseLabels: [String]
    public let phaseExact: [Bool]
    /// Times each block ran, over all phases.
    public let blockHeat: [UInt64]
    /// Times the function's hottest block ran, over all phases.
    public let functionHeat: [UInt64]
    public let maxFunctionHeat: UInt64
    /// Chains each function's blocks lie in: `lo ..< hi` (empty for a function without code).
    public let functionChains: [Range<Int>]
    /// Function names, lower-cased, for searching.
    let lowerNames: [String]
    /// Functions whose name another function has too (local symbols of several files):
    /// lists show their address beside the name.
    public let sharesName: [Bool]
    public let granularity: Granularity

    public init(session s: Session) {
        program = s.program
        chains = s.chains
        graph = s.graph
        imagePath = s.program.path
        imageName = (s.program.path as NSString).lastPathComponent
        phaseNames = s.profiles.map(\.name)
        phaseExact = s.profiles.map(\.hasSequence)
        let image = imageName
        phaseLabels = s.profiles.map { p in
            var n = p.name
            for ext in [".trace", ".log", ".fdata"] where n.hasSuffix(ext) && n.count > ext.count { n.removeLast(ext.count) }
            if n.hasPrefix(image + "."), n.count > image.count + 1 { n.removeFirst(image.count + 1) }
            return n
        }
        var heat = [UInt64](repeating: 0, count: s.program.blockCount)
        for p in s.profiles {
            p.blockCounts.withUnsafeBufferPointer { c in
                for b in 0..<heat.count { heat[b] &+= c[b] }
            }
        }
        blockHeat = heat
        var fh = [UInt64](repeating: 0, count: s.program.functions.count)
        var fc = [Range<Int>](repeating: 0..<0, count: s.program.functions.count)
        for (i, f) in s.program.functions.enumerated() {
            let blocks = f.blocks
            guard !blocks.isEmpty else { continue }
            var h: UInt64 = 0
            for b in blocks { h = max(h, heat[b]) }
            fh[i] = h
            fc[i] = Int(s.chains.blockChain[blocks.lowerBound])..<(Int(s.chains.blockChain[blocks.upperBound - 1]) + 1)
        }
        functionHeat = fh
        maxFunctionHeat = fh.max() ?? 0
        functionChains = fc
        lowerNames = s.program.functions.map { $0.name.lowercased() }
        var seen: [String: Int] = [:]
        for f in s.program.functions where !f.isGap { seen[f.name, default: 0] += 1 }
        sharesName = s.program.functions.map { !$0.isGap && (seen[$0.name] ?? 0) > 1 }
        granularity = s.chains.granularity
        chainFunctions = s.chainFunctions
    }

    public var functionCount: Int { program.functions.count }

    /// A function's name as lists show it: with its address when another function has
    /// the same name.
    public func displayName(_ f: Int) -> String {
        let fn = program.functions[f]
        return sharesName[f] ? "\(fn.name) @\(String(fn.address, radix: 16))" : fn.name
    }

    /// Where a chain starts: `function` or `function+0x1c`.
    public func chainName(_ c: Int) -> String {
        let b = Int(chains.firstBlock[c])
        let f = program.functions[Int(program.blockFunction[b])]
        let off = program.blockStart[b] - f.address
        return off == 0 ? f.name : "\(f.name)+0x\(String(off, radix: 16))"
    }

    public func chainFunction(_ c: Int) -> Int { Int(chainFunctions[c]) }

    /// The function of each chain's first block (`Session.chainFunctions`).
    public let chainFunctions: [Int32]

    public func chainHeat(_ c: Int) -> UInt64 { graph.chainHeat[c] }
}

/// Where a function's code ended up.
public struct FunctionPlacement: Sendable, Equatable {
    public enum Kind: UInt8, Sendable {
        /// In the core set (configured or required: see `CoreSet.reason`).
        case core
        /// Every chain resident: absorbed into core within γ (or sharing a core chain).
        case hot
        /// Resident because a chain is larger than the buffer.
        case oversize
        /// Every chain in overlay clusters.
        case cold
        /// Some chains resident, some in clusters.
        case mixed
        /// No code (a symbol without blocks).
        case none
    }
    public var kind: Kind
    /// Overlay clusters holding its chains, ascending.
    public var clusters: [Int32]
}

/// Every function's placement, kept flat: each function's kind, and the clusters of all
/// functions in one array with each function's stretch of it. An array of
/// `FunctionPlacement` allocated an array of clusters per function and retained and
/// released each when it was built and dropped, about a millisecond of every edit on a
/// kernel's eleven thousand functions.
public struct FunctionPlacements: RandomAccessCollection, Equatable, Sendable {
    let kinds: [FunctionPlacement.Kind]
    /// Function f's clusters are `clusterList[clusterStart[f] ..< clusterStart[f + 1]]`.
    let clusterStart: [Int32]
    let clusterList: [Int32]

    public var startIndex: Int { 0 }
    public var endIndex: Int { kinds.count }

    public subscript(_ f: Int) -> FunctionPlacement {
        FunctionPlacement(kind: kinds[f], clusters: Array(clusterList[Int(clusterStart[f])..<Int(clusterStart[f + 1])]))
    }

    /// Function f's kind, without its clusters.
    public func kind(_ f: Int) -> FunctionPlacement.Kind { kinds[f] }
}

/// One clustering and its cost: everything the views show for one configuration. Built by
/// the engine, never changed afterwards.
public final class Analysis: @unchecked Sendable {
    public let config: Config
    public let core: CoreSet
    public let clustering: Clustering
    public let row: Table1Row
    public let phases: [PhaseCost]
    /// Loads caused by entering each chain, summed over phases.
    public let chainLoads: [UInt64]
    public let functionLoads: [UInt64]
    public let placement: FunctionPlacements
    /// Per cluster, summed over phases.
    public let clusterLoads: [UInt64]
    public let clusterBytesLoaded: [UInt64]
    public let clusterSeconds: [Double]
    /// Distinct functions with code in each cluster.
    public let clusterFunctionCount: [Int]
    public let totalLoads: UInt64
    public let totalSeconds: Double
    /// Coalescing events by kind: merged, into core, refused, defragmentation.
    public var eventCounts: (merged: Int, intoCore: Int, refused: Int, defragmented: Int) { steps.counts }
    /// The cluster graph after coalescing, built the first time a view asks for it (it
    /// costs a pass over every chain edge, which a γ change should not pay for).
    public var adjacency: ClusterAdjacency {
        adjacencyLock.lock()
        defer { adjacencyLock.unlock() }
        if let a = adjacencyStorage { return a }
        let a = ClusterAdjacency(graph: graph, clustering: clustering)
        adjacencyStorage = a
        return a
    }
    private let graph: ClusterGraph
    private let adjacencyLock = NSLock()
    private var adjacencyStorage: ClusterAdjacency?
    /// After each coalescing event: live clusters (core not counted) and core's size.
    public var liveAfter: [Int32] { steps.live }
    public var coreAfter: [Int32] { steps.core }
    /// The running totals of the coalescing steps, summed the first time the steps view
    /// asks (a pass over every event, which an edit should not wait for).
    private var steps: (live: [Int32], core: [Int32], counts: (merged: Int, intoCore: Int, refused: Int, defragmented: Int)) {
        let ev = events
        stepsLock.lock()
        defer { stepsLock.unlock() }
        if let s = stepsStorage { return s }
        let s = Analysis.runningTotals(ev, live: initialLive, core: initialCore)
        stepsStorage = s
        return s
    }
    /// Figure 2's coalescing events, step by step (`Clustering.events`). An edit does not
    /// record them unless the steps view is on screen (2 MB written on a kernel, 5% of the
    /// coalescer's time): then the first look runs the same coalescing again, recording
    /// them (its clustering is the same; the coalescer is deterministic). The affinity
    /// layout has none.
    public var events: [CoalesceEvent] {
        if clustering.parameters.recordEvents || config.method != .figure2 { return clustering.events }
        eventsLock.lock()
        defer { eventsLock.unlock() }
        if let e = eventsStorage { return e }
        var params = clustering.parameters
        params.recordEvents = true
        let e = Coalescer.run(graph, params, keepPrepared: false).events
        eventsStorage = e
        return e
    }
    private let eventsLock = NSLock()
    private var eventsStorage: [CoalesceEvent]?
    private let stepsLock = NSLock()
    private var stepsStorage: (live: [Int32], core: [Int32], counts: (merged: Int, intoCore: Int, refused: Int, defragmented: Int))?
    /// Before the first event.
    public let initialLive: Int32
    public let initialCore: Int32
    /// Clustering and cost, in milliseconds.
    public let milliseconds: Double
    /// Worked out before the user asked for it (`Effect.analyseAhead`): the edit that
    /// shows it waited for none of `milliseconds`.
    public let computedAhead: Bool
    /// Bytes of resident code by state: core, hot, oversize (instruction bytes, no stubs).
    public let residentSplit: (core: Int, hot: Int, oversize: Int)

    init(config: Config, core: CoreSet, clustering c: Clustering, row: Table1Row, attributed: [AttributedPhaseCost],
         model m: ExplorerModel, milliseconds: Double, computedAhead: Bool = false) {
        self.computedAhead = computedAhead
        self.config = config
        self.core = core
        self.clustering = c
        self.row = row
        self.phases = attributed.map(\.cost)
        self.milliseconds = milliseconds
        let nChains = c.chainCluster.count
        var chainLoads = [UInt64](repeating: 0, count: nChains)
        for a in attributed {
            for i in 0..<nChains { chainLoads[i] &+= a.chainLoads[i] }
        }
        self.chainLoads = chainLoads
        let k = c.clusterCount
        var cl = [UInt64](repeating: 0, count: k), cb = [UInt64](repeating: 0, count: k), cs = [Double](repeating: 0, count: k)
        for p in phases {
            for i in 0..<min(k, p.clusterLoads.count) {
                cl[i] += p.clusterLoads[i]
                cb[i] += p.clusterBytesLoaded[i]
                let pages = (Double(c.clusterSize[i]) / Double(config.pageSize)).rounded(.up)
                cs[i] += pages * Double(p.clusterLoads[i]) * config.pageReadMicroseconds / 1e6
            }
        }
        clusterLoads = cl
        clusterBytesLoaded = cb
        clusterSeconds = cs
        totalLoads = phases.reduce(0) { $0 + $1.loads }
        totalSeconds = phases.reduce(0) { $0 + $1.estimatedCostSeconds }

        // Functions: placement and loads.
        let nf = m.functionCount
        var fl = [UInt64](repeating: 0, count: nf)
        var kinds = [FunctionPlacement.Kind](repeating: .none, count: nf)
        var clusterStart = [Int32](repeating: 0, count: nf + 1)
        var clusterList: [Int32] = []
        // Which function last listed each cluster: a cluster is listed once a function.
        var listedBy = [Int32](repeating: -1, count: c.clusterCount)
        // The model's and the clustering's arrays as locals: the loops below touch every
        // chain, and a property read through a class each time costs more than the work.
        let functionChains = m.functionChains, chainCluster = c.chainCluster, chainState = c.chainState
        var isCore = [Bool](repeating: false, count: nf)
        for f in core.reasons.keys where Int(f) < nf { isCore[Int(f)] = true }
        for f in 0..<nf {
            clusterStart[f] = Int32(clusterList.count)
            let range = functionChains[f]
            if range.isEmpty { continue }
            var loads: UInt64 = 0
            var resident = 0, oversize = 0, cold = 0
            let first = clusterList.count
            for ch in range {
                loads &+= chainLoads[ch]
                let x = chainCluster[ch]
                if x < 0 {
                    resident += 1
                    if chainState[ch] == .oversize { oversize += 1 }
                } else {
                    cold += 1
                    if listedBy[Int(x)] != Int32(f) { listedBy[Int(x)] = Int32(f); clusterList.append(x) }
                }
            }
            fl[f] = loads
            if clusterList.count - first > 1 { clusterList[first...].sort() }
            if isCore[f] { kinds[f] = .core }
            else if cold == 0 { kinds[f] = oversize > 0 ? .oversize : .hot }
            else if resident == 0 { kinds[f] = .cold }
            else { kinds[f] = .mixed }
        }
        clusterStart[nf] = Int32(clusterList.count)
        functionLoads = fl
        placement = FunctionPlacements(kinds: kinds, clusterStart: clusterStart, clusterList: clusterList)
        var fc = [Int](repeating: 0, count: k)
        let chainFunctions = m.chainFunctions
        for x in 0..<k {
            var last: Int32 = -1
            var n = 0
            for ch in c.clusterChains[x] {
                let f = chainFunctions[Int(ch)]
                if f != last { n += 1; last = f }
            }
            fc[x] = n
        }
        clusterFunctionCount = fc
        graph = m.graph

        // Clusters besides core before the first coalescing step (every hot or cold
        // chain on its own), and resident bytes by kind.
        var live: Int32 = 0
        var coreBytes = 0, hotBytes = 0, overBytes = 0
        let chainBytes = m.chains.bytes
        for ch in 0..<nChains {
            switch chainState[ch] {
            case .core: coreBytes += Int(chainBytes[ch])
            case .hot: hotBytes += Int(chainBytes[ch]); live += 1
            case .oversize: overBytes += Int(chainBytes[ch])
            case .cold: live += 1
            }
        }
        residentSplit = (coreBytes, hotBytes, overBytes)
        initialLive = live
        let coreStart = Int32(clamping: c.coreLimit - Int((Double(c.coreBaseBytes) * config.gamma / 100).rounded(.down)))
        initialCore = coreStart
    }

    /// Live clusters and core's size after each event, and the events by kind.
    static func runningTotals(_ events: [CoalesceEvent], live live0: Int32, core: Int32)
        -> (live: [Int32], core: [Int32], counts: (merged: Int, intoCore: Int, refused: Int, defragmented: Int)) {
        var live = live0
        var la = [Int32](repeating: 0, count: events.count)
        var ca = [Int32](repeating: 0, count: events.count)
        var coreNow = core
        var counts = (merged: 0, intoCore: 0, refused: 0, defragmented: 0)
        for (i, e) in events.enumerated() {
            switch e.kind {
            case .merged:
                live -= 1
                counts.merged += 1
            case .defragmented:
                live -= 1
                counts.defragmented += 1
            case .absorbedIntoCore:
                live -= 1
                coreNow = e.result
                counts.intoCore += 1
            case .defragmentedIntoCore:
                live -= 1
                coreNow = e.result
                counts.defragmented += 1
            case .refused:
                counts.refused += 1
            }
            la[i] = live
            ca[i] = coreNow
        }
        return (la, ca, counts)
    }

    /// The cluster graph's node for the resident code.
    public var residentNode: Int32 { Int32(clustering.clusterCount) }

    /// The node of the cluster graph a chain is in (`residentNode` when resident).
    public func node(ofChain ch: Int) -> Int32 {
        let x = clustering.chainCluster[ch]
        return x < 0 ? residentNode : x
    }
}

/// What pinning one function would do, from clustering and replaying with it pinned.
public struct WhatIf: Sendable, Equatable {
    /// Loads saved over every phase (negative: pinning would cost loads).
    public var savedLoads: Int64
    /// Resident code added (core and the hot code its larger γ allowance takes in).
    public var addedBytes: Int
    public var savedSeconds: Double

    public init(savedLoads: Int64, addedBytes: Int, savedSeconds: Double) {
        self.savedLoads = savedLoads
        self.addedBytes = addedBytes
        self.savedSeconds = savedSeconds
    }

    /// Loads saved per KB of resident code added; +∞ when pinning saves loads for free.
    public var perKB: Double {
        if addedBytes <= 0 { return savedLoads > 0 ? .infinity : (savedLoads < 0 ? -.infinity : 0) }
        return Double(savedLoads) / (Double(addedBytes) / 1024)
    }
}

/// One γ of the sweep view.
public struct SweepPoint: Sendable, Equatable {
    public var gamma: Double
    public var clusters: Int
    public var totalMemory: Int
    public var reductionPercent: Double
    public var loads: UInt64
    public var seconds: Double
}

public enum ExportKind: String, Sendable, CaseIterable {
    case toml, dot, ldScript, rewrittenImage

    public var title: String {
        switch self {
        case .toml: return "configuration (TOML)"
        case .dot: return "cluster graph (Graphviz DOT)"
        case .ldScript: return "GNU ld script (OVERLAY per cluster)"
        case .rewrittenImage: return "rewritten image"
        }
    }

    public var key: Character {
        switch self {
        case .toml: return "t"
        case .dot: return "d"
        case .ldScript: return "l"
        case .rewrittenImage: return "w"
        }
    }

    public var fileExtension: String {
        switch self {
        case .toml: return "toml"
        case .dot: return "dot"
        case .ldScript: return "ld"
        case .rewrittenImage: return "ovl"
        }
    }
}

/// Work the reducer asks for. The front end runs it off the input loop; tests run it
/// in place.
public enum Effect: Sendable {
    /// Cluster and cost a configuration. `generation` grows with every edit: results of
    /// older generations are stale. `events`: record the coalescing events (the steps
    /// view is on screen; else `Analysis.events` finds them when first asked).
    case analyse(Config, generation: Int, events: Bool = false)
    /// What-if values for functions, against `base` (the current analysis).
    case whatIf(base: Analysis, functions: [Int32], generation: Int)
    /// Analyses of the edits the user is likely to make next (γ one point either way,
    /// pinning the function under the cursor), worked out while the engine would be idle
    /// and kept until asked for; `shown` is the configuration on screen, which each is an
    /// edit of. A newer request replaces it; any other work for the engine stops it at
    /// once (`ExplorerRuntime`).
    case analyseAhead([Config], shown: Config)
    /// The sweep: `config` with each γ in `gammas`.
    case sweep(Config, gammas: [Double], generation: Int)
    /// The optimiser's frontier for a configuration's core set, profiles and page model.
    case frontier(Config)
    case export(ExportKind, path: String, analysis: Analysis)
    /// Clear and repaint the terminal.
    case redraw
}

/// What the engine reports back.
public enum EngineEvent: Sendable {
    case analysed(Analysis, generation: Int)
    case analysisFailed(Config, message: String, generation: Int)
    /// One analysis of `Effect.analyseAhead`.
    case analysedAhead(Analysis)
    case whatIf(Config, [(function: Int32, value: WhatIf)])
    case sweepPoint(Config, gammas: [Double], index: Int, SweepPoint)
    case frontier(Config, [FrontierPoint])
    case exported(String)
    case exportFailed(String)
}
