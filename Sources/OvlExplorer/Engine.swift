import Foundation
import OvlCore
import Synchronization

/// The explorer's side of the engine: one `Session` and one `CostModel`, asked for
/// analyses, what-if values, sweep points and exports. Call it from one thread at a time
/// (the front end's worker, or the test's own thread), except `whatIf`, which only reads
/// the session and may run on a second thread beside the rest (`ExplorerRuntime`).
public final class ExplorerEngine: @unchecked Sendable {
    public let session: Session
    public let costModel: CostModel
    public let model: ExplorerModel
    /// Milliseconds from an arbitrary origin; tests pass a fixed clock so the header's
    /// timing is stable.
    let clock: @Sendable () -> Double

    public init(session: Session, clock: (@Sendable () -> Double)? = nil) {
        self.session = session
        costModel = CostModel(session: session)
        model = ExplorerModel(session: session)
        self.clock = clock ?? { Double(DispatchTime.now().uptimeNanoseconds) / 1e6 }
        // Lazy engine values, computed here so no two threads race to fill them (what-if
        // estimates run beside analyses).
        _ = (session.executedCodeBytes, session.chainFunctions)
    }

    public static func open(image: String, profiles: [String], config: Config, showProgress: Bool = false,
                            clock: (@Sendable () -> Double)? = nil) throws -> ExplorerEngine {
        ExplorerEngine(session: try Session.open(image: image, profiles: profiles, config: config, showProgress: showProgress), clock: clock)
    }

    /// Clusters and costs `config`; `events`: with the coalescing events recorded as it
    /// goes (else `Analysis.events` runs the coalescer again when first asked).
    public func analyse(_ config: Config, events: Bool = false) throws -> Analysis {
        let t0 = clock()
        try session.update(config)
        return analysis(config, stop: nil, keepPrepared: true, events: events, since: t0)!
    }

    /// `analyse` for work ahead of the user (`Effect.analyseAhead`): nil when `stop` is
    /// raised before it is done, or when `config` cannot be applied (the edit itself will
    /// report why). Work ahead whose core set differs from the one on screen (`shown`)
    /// does not keep its coalescer state: that would push out the state the next edit
    /// needs (`Coalescer.run`).
    public func analyseAhead(_ config: Config, shown: Config, stop: StopSignal) -> Analysis? {
        let t0 = clock()
        guard (try? session.update(config)) != nil else { return nil }
        let sameCore = shown.coreFunctions == config.coreFunctions && shown.coreExclude == config.coreExclude && shown.corePreset == config.corePreset
        return analysis(config, stop: stop, keepPrepared: sameCore, events: false, since: t0)
    }

    /// The session's configuration (`config`, applied) clustered and costed.
    private func analysis(_ config: Config, stop: StopSignal?, keepPrepared: Bool, events: Bool, since t0: Double) -> Analysis? {
        let c: Clustering
        if let stop {
            guard let k = session.cluster(recordEvents: events, keepPrepared: keepPrepared, stop: { stop.isRaised }) else { return nil }
            c = k
        } else {
            c = session.cluster(recordEvents: events)
        }
        if stop?.isRaised == true { return nil }
        let row = session.statistics(c)
        var costs = costModel.attributedCosts(c, config: config)
        if stop?.isRaised == true { return nil }
        // The yardstick beside every figure: paging in the same memory.
        for i in costs.indices where session.profiles[i].hasSequence {
            costs[i].cost.paging = costModel.paging(session.profiles[i], totalMemory: row.totalMemory)
        }
        let ms = clock() - t0
        return Analysis(config: config, core: session.core, clustering: c, row: row, attributed: costs, model: model, milliseconds: ms,
                        computedAhead: stop != nil)
    }

    /// What pinning function `f` would do to `base`: cluster with it pinned, replay, compare.
    /// Pinning a name makes every function of that name core and changes nothing else
    /// (`Config.pinning`), so core is `base`'s plus those functions' chains; no need to
    /// resolve the whole core set again.
    public func whatIf(_ f: Int32, base: Analysis) -> WhatIf {
        let p = model.program
        let name = p.functions[Int(f)].name
        var members = base.clustering.parameters.coreChains
        for g in p.functions.indices where p.functions[g].name == name || p.functions[g].aliases.contains(name) {
            for b in p.functions[g].blocks { members[Int(model.chains.blockChain[b])] = true }
        }
        let c = session.cluster(base.config, coreChains: members, keepPrepared: false)
        let (loads, seconds) = costModel.totalLoads(c, config: base.config)
        return WhatIf(savedLoads: Int64(base.totalLoads) - Int64(loads),
                      addedBytes: c.residentCodeBytes - base.clustering.residentCodeBytes,
                      savedSeconds: base.totalSeconds - seconds)
    }

    /// The optimiser's frontier (`ovl optimize --frontier`) for `config`'s core set,
    /// profiles and page model, each point measured as analyze measures it.
    public func frontier(_ config: Config) -> [FrontierPoint] {
        guard (try? session.update(config)) != nil, session.profiles.contains(where: \.hasSequence) else { return [] }
        let opt = Optimizer(session: session)
        return Optimizer.frontier(opt.finish(Optimizer.frontier(opt.search())))
    }

    /// One point of the sweep: `config` as it is (its γ is the point's).
    public func sweepPoint(_ config: Config) throws -> SweepPoint {
        try session.update(config)
        let c = session.cluster(recordEvents: false)
        let row = session.statistics(c)
        let (loads, seconds) = costModel.totalLoads(c, config: config)
        return SweepPoint(gamma: config.gamma, clusters: row.clusters, totalMemory: row.totalMemory,
                          reductionPercent: row.reductionPercent, loads: loads, seconds: seconds)
    }

    /// The text of an export.
    public func exportText(_ kind: ExportKind, analysis a: Analysis) throws -> String {
        switch kind {
        case .toml:
            return Exports.toml(session: session, config: a.config, row: a.row)
        case .dot:
            return Exports.dot(session: session, clustering: a.clustering, config: a.config, clusterLoads: a.clusterLoads)
        case .ldScript:
            return try Exports.linkerScript(session: session, clustering: a.clustering, config: a.config, clusterLoads: a.clusterLoads)
        case .rewrittenImage:
            throw OvlError("the rewritten image is binary; it is written by export(_:path:analysis:)")
        }
    }

    /// Writes an export; returns the message for the status line.
    public func export(_ kind: ExportKind, path: String, analysis: Analysis) throws -> String {
        if kind == .rewrittenImage {
            // The same code as `ovl rewrite`, for the configuration on screen.
            try session.update(analysis.config)
            let r = try Rewriter.rewrite(session: session, clustering: analysis.clustering, storage: analysis.config.storage)
            try FileWriter.writeAtomically(Data(r.image), to: path, inputs: [model.imagePath] + session.profiles.map(\.source), executable: true)
            return "wrote the rewritten image to \(path) (\(Describe.count(r.image.count)) B, \(Describe.count(r.clusterCount, "cluster")); OVL_STATS=file counts its loads)"
        }
        let text = try exportText(kind, analysis: analysis)
        try FileWriter.writeAtomically(text, to: path, inputs: [model.imagePath] + session.profiles.map(\.source))
        return "wrote \(kindNoun(kind)) to \(path) (\(Describe.count(text.utf8.count)) B)"
    }

    func kindNoun(_ k: ExportKind) -> String {
        switch k {
        case .toml: return "the configuration"
        case .dot: return "the cluster graph"
        case .ldScript: return "the ld script"
        case .rewrittenImage: return "the image"
        }
    }

    /// Runs one effect in place and returns what it reports (tests and benchmarks; the
    /// front end's `ExplorerRuntime` does the same on a worker thread).
    public func run(_ effect: Effect) -> [EngineEvent] {
        switch effect {
        case .analyse(let cfg, let gen, let events):
            do { return [.analysed(try analyse(cfg, events: events), generation: gen)] }
            catch { return [.analysisFailed(cfg, message: "\(error)", generation: gen)] }
        case .whatIf(let base, let fns, _):
            return [.whatIf(base.config, fns.map { ($0, whatIf($0, base: base)) })]
        case .analyseAhead(let configs, let shown):
            let never = StopSignal()
            return configs.compactMap { analyseAhead($0, shown: shown, stop: never) }.map { .analysedAhead($0) }
        case .sweep(let cfg, let gammas, _):
            var out: [EngineEvent] = []
            for (i, g) in gammas.enumerated() {
                var c = cfg
                c.gamma = g
                if let p = try? sweepPoint(c) { out.append(.sweepPoint(cfg, gammas: gammas, index: i, p)) }
            }
            return out
        case .frontier(let key):
            return [.frontier(key, frontier(key))]
        case .export(let kind, let path, let a):
            do { return [.exported(try export(kind, path: path, analysis: a))] }
            catch { return [.exportFailed("\(error)")] }
        case .redraw:
            return []
        }
    }
}

/// Raised to stop work ahead of the user (`ExplorerEngine.analyseAhead`) from another
/// thread.
public final class StopSignal: Sendable {
    private let raised = Atomic<Bool>(false)
    public init() {}
    public func raise() { raised.store(true, ordering: .relaxed) }
    public var isRaised: Bool { raised.load(ordering: .relaxed) }
}

/// Writes files through a temporary file and a rename, so a failed write leaves nothing
/// half-written, and never over an input of the session.
public enum FileWriter {
    public static func writeAtomically(_ text: String, to path: String, inputs: [String]) throws {
        try writeAtomically(Data(text.utf8), to: path, inputs: inputs)
    }

    public static func writeAtomically(_ data: Data, to path: String, inputs: [String], executable: Bool = false) throws {
        try OutputFile.write(data, to: path, inputs: inputs, executable: executable)
    }
}
