import Foundation
import OvlCore
@testable import OvlExplorer
import Testing

/// The explorer's model and its engine support: what the views show must be what the
/// engine computes.
@Suite("Model")
struct ModelTests {
    @Test func attributedCostsEqualTheCostModel() throws {
        let s = try Session.open(image: Fixture.image, profiles: Fixture.profiles, config: Fixture.config, showProgress: false)
        let model = CostModel(session: s)
        for buffers in [1, 3] {
            var cfg = Fixture.config
            cfg.buffers = buffers
            try s.update(cfg)
            let c = s.cluster(recordEvents: false)
            let plain = model.costs(c)
            let attributed = model.attributedCosts(c, config: cfg)
            for (p, a) in zip(plain, attributed) {
                #expect(a.cost.loads == p.loads)
                #expect(a.cost.bytesLoaded == p.bytesLoaded)
                #expect(a.cost.clusterLoads == p.clusterLoads)
                #expect(a.cost.estimatedCostSeconds == p.estimatedCostSeconds)
                #expect(a.chainLoads.reduce(0, +) == p.loads)
                // Loads are charged to cold chains only.
                #expect(a.chainLoads.indices.allSatisfy { a.chainLoads[$0] == 0 || c.chainCluster[$0] >= 0 })
            }
            let total = model.totalLoads(c, config: cfg)
            #expect(total.loads == plain.reduce(0) { $0 + $1.loads })
        }
    }

    @Test func analysisAgreesWithTheSession() throws {
        let engine = try Fixture.engine()
        let a = try engine.analyse(Fixture.config)
        let s = engine.session
        #expect(a.row == s.statistics(a.clustering))
        #expect(a.clusterLoads.reduce(0, +) == a.totalLoads)
        #expect(a.functionLoads.reduce(0, +) >= a.totalLoads, "a chain shared by two functions counts for both")
        // Placement follows the chains.
        for f in 0..<engine.model.functionCount {
            let range = engine.model.functionChains[f]
            let pl = a.placement[f]
            switch pl.kind {
            case .cold: #expect(range.allSatisfy { a.clustering.chainCluster[$0] >= 0 })
            case .hot, .oversize: #expect(range.allSatisfy { a.clustering.chainCluster[$0] < 0 })
            case .core: #expect(a.core.contains(Int32(f)))
            default: break
            }
            #expect(pl.clusters == Array(Set(range.map { a.clustering.chainCluster[$0] }.filter { $0 >= 0 })).sorted())
        }
        // The cluster graph: symmetric, weights add up to the chain edges'.
        let adj = a.adjacency
        var crossing: UInt64 = 0, inside: UInt64 = 0
        for e in 0..<s.graph.edgeCount {
            if a.node(ofChain: Int(s.graph.edgeA[e])) == a.node(ofChain: Int(s.graph.edgeB[e])) { inside += s.graph.edgeWeight[e] } else { crossing += s.graph.edgeWeight[e] }
        }
        #expect(adj.internalWeight.reduce(0, +) == inside)
        #expect(adj.neighbours.reduce(0) { $0 + $1.reduce(0) { $0 + $1.weight } } == 2 * crossing)
        for x in 0..<adj.nodeCount {
            for (y, w) in adj.neighbours[x] { #expect(adj.weight(y, Int32(x)) == w) }
        }
    }

    @Test func whatIfMatchesPinning() throws {
        let engine = try Fixture.engine()
        let base = try engine.analyse(Fixture.config)
        let p = engine.model.program
        for name in ["merge_sort", "printf_core", "strcmp"] {
            let f = Int32(p.functionIndex(named: name)!)
            let w = engine.whatIf(f, base: base)
            let pinned = try engine.analyse(Fixture.config.pinning(name, in: p))
            #expect(w.savedLoads == Int64(base.totalLoads) - Int64(pinned.totalLoads), "\(name)")
            #expect(w.addedBytes == pinned.clustering.residentCodeBytes - base.clustering.residentCodeBytes, "\(name)")
        }
    }

    @Test func pinningEditsTheConfiguration() throws {
        let engine = try Fixture.engine()
        let p = engine.model.program
        var c = Fixture.config.pinning("main", in: p)
        #expect(c.coreFunctions == ["main"])
        #expect(c.pinning("main", in: p) == c, "pinning twice changes nothing")
        c = c.unpinning("main", in: p)
        #expect(c == Fixture.config)
        // A preset function: unpinning excludes it, pinning lifts the exclusion.
        c = Fixture.config.unpinning("__init_libc", in: p)
        #expect(c.coreExclude == ["__init_libc"] && c.coreFunctions.isEmpty)
        #expect(c.pinning("__init_libc", in: p) == Fixture.config)
        // A glob: unpinning one match excludes just that one.
        var g = Fixture.config
        g.coreFunctions = ["cmp_*"]
        let u = g.unpinning("cmp_id", in: p)
        #expect(u.coreFunctions == ["cmp_*"] && u.coreExclude == ["cmp_id"])
    }

    @Test func keyTableHasNoConflicts() {
        for ctx in KeyContext.allCases {
            let inScope = KeyTable.bindings.filter { $0.context == ctx }
            var seen: [Key: Command] = [:]
            for b in inScope {
                for k in b.keys {
                    #expect(seen[k] == nil, "\(k.label) is bound twice in \(ctx.rawValue)")
                    seen[k] = b.command
                }
            }
        }
        // Every binding is in the help, and the help has nothing else.
        let help = KeyTable.helpLines(ascii: false).filter { !$0.heading && !$0.key.isEmpty }
        #expect(help.count == KeyTable.bindings.count + KeyTable.glossary.count)
        // Lower-case letters never change the configuration (u undoes, which is the
        // conventional exception).
        let changing: Set<Command> = [.togglePin, .gammaUp, .gammaDown, .setGamma, .setBuffer, .setPageModel, .addCoreGlob, .addExclude, .deleteEntry, .redo]
        for b in KeyTable.bindings where changing.contains(b.command) {
            for k in b.keys {
                if case .char(let c) = k { #expect(!c.isLowercase, "\(c) changes the configuration but is lower-case") }
            }
        }
    }

    @Test func keyScriptNotation() {
        #expect(Key.script("ab<Enter><Space><C-r><S-Tab><lt>") == [.char("a"), .char("b"), .enter, .char(" "), .ctrl("r"), .backTab, .char("<")])
        #expect(Key.script("<nope>") == Array("<nope>").map { .char($0) })
    }

    @Test func bundledSampleIsFoundFromBelow() throws {
        let nested = Fixture.root + "/Sources/OvlExplorer"
        let found = BundledSample.locate(from: [nested])
        #expect(found?.image == Fixture.image)
        #expect(found?.profiles == Fixture.profiles)
        #expect(BundledSample.locate(from: ["/"]) == nil)
    }

    /// Waits (polling, on this thread: no task to resume on a busy pool) until the runtime
    /// is idle or `seconds` pass; returns every event it reported, in order.
    static func drain(_ runtime: ExplorerRuntime, seconds: Double, until done: ([EngineEvent]) -> Bool = { _ in false }) -> [EngineEvent] {
        var all: [EngineEvent] = []
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            all += runtime.takeEvents()
            if done(all) { break }
            usleep(2_000)
        } while Date() < deadline && runtime.isBusy
        all += runtime.takeEvents()
        return all
    }

    @Test func runtimeDropsStaleAnalyses() throws {
        let engine = try Fixture.engine()
        let runtime = ExplorerRuntime(engine: engine)
        var configs: [Config] = []
        for g in 0..<12 {
            var c = Fixture.config
            c.gamma = Double(g)
            configs.append(c)
            runtime.submit([.analyse(c, generation: g)])
        }
        // Generous: a debug build on a loaded two-core machine takes seconds an analysis,
        // and the property checked is which analyses run, not how fast.
        let events = ModelTests.drain(runtime, seconds: 600)
        let analysed = events.compactMap { e -> Analysis? in if case .analysed(let a, _) = e { return a } else { return nil } }
        #expect(analysed.last?.config == configs.last, "the latest configuration is analysed")
        #expect(analysed.count < configs.count, "analyses queued behind a newer one are dropped (\(analysed.count) ran)")
    }

    /// A runtime on the bundled sample, busy with what-if estimates for every function,
    /// `times` over (far longer than one analysis); the estimates asked for.
    static func runtimeEstimating(times: Int, generation: Int) throws -> (ExplorerEngine, ExplorerRuntime, [Int32]) {
        let engine = try Fixture.engine()
        let base = try engine.analyse(Fixture.config)
        let runtime = ExplorerRuntime(engine: engine)
        let functions = Array(0..<Int32(engine.model.functionCount))
        let all = Array(repeating: functions, count: times).flatMap { $0 }
        runtime.submit([.whatIf(base: base, functions: all, generation: generation)])
        return (engine, runtime, all)
    }

    /// What-if estimates run on a worker of their own: an edit's analysis, submitted while
    /// the estimates for every function are being computed, is reported before they end
    /// (the runtime reports events in the order they happen).
    @Test func analysesDoNotWaitForWhatIfEstimates() throws {
        let (engine, runtime, all) = try ModelTests.runtimeEstimating(times: 40, generation: 1)
        usleep(20_000)
        var edited = Fixture.config
        edited.gamma = 17
        runtime.submit([.analyse(edited, generation: 1)])
        let events = ModelTests.drain(runtime, seconds: 600) { events in
            events.contains { if case .analysed = $0 { return true } else { return false } }
        }
        var estimatesBefore = 0
        var analysed = false
        for e in events {
            if case .analysed(let a, _) = e, a.config == edited { analysed = true; break }
            if case .whatIf(_, let values) = e { estimatesBefore += values.count }
        }
        #expect(analysed, "the edit was analysed")
        #expect(estimatesBefore < all.count, "the analysis came while estimates were still running (\(estimatesBefore) of \(all.count) before it)")
        // A newer generation makes the remaining estimates stale: the worker stops.
        runtime.submit([.analyse(Fixture.config, generation: 2)])
        _ = ModelTests.drain(runtime, seconds: 600)
    }

    /// What-if estimates give way to analyses on the other worker between estimates (they
    /// would share the cores): with both queued, every analysis ahead and every estimate
    /// is still reported, the analyses as from scratch, and the analyses come before the
    /// estimates end.
    @Test func whatIfEstimatesGiveWayToWorkAhead() throws {
        let (_, runtime, all) = try ModelTests.runtimeEstimating(times: 20, generation: 0)
        let ahead = [3.0, 5.0, 9.0].map { g -> Config in
            var c = Fixture.config
            c.gamma = g
            return c
        }
        runtime.submit([.analyseAhead(ahead, shown: Fixture.config)])
        let events = ModelTests.drain(runtime, seconds: 600)
        var estimates = 0, estimatesBeforeLast = 0
        var done: [Analysis] = []
        for e in events {
            if case .whatIf(_, let v) = e { estimates += v.count }
            if case .analysedAhead(let a) = e { done.append(a); estimatesBeforeLast = estimates }
        }
        #expect(estimates == all.count, "every estimate was reported")
        #expect(done.map(\.config) == ahead, "every analysis ahead was reported, in order")
        #expect(estimatesBeforeLast < all.count, "the analyses came before the estimates ended")
        let scratch = try Fixture.engine()
        for a in done {
            let fresh = try scratch.analyse(a.config)
            #expect(a.clustering.chainCluster == fresh.clustering.chainCluster && a.totalLoads == fresh.totalLoads)
        }
    }

    /// After an analysis is shown the reducer asks for the likely next edits: γ a point
    /// the way it last went, then back, then pinning the function under the cursor; none
    /// with the affinity layout, which cannot be stopped part way.
    @Test func workAheadIsAskedForTheLikelyNextEdits() throws {
        let engine = try Fixture.engine()
        for method in [ClusteringMethod.figure2, .affinity] {
            var config = Fixture.config
            config.method = method
            config.gamma = 4
            var (s, _) = Explorer.start(model: engine.model, config: config, width: 120, height: 40)
            var fx: [Effect]
            (s, fx) = Explorer.handle(s, .engine(.analysed(try engine.analyse(config), generation: s.generation)))
            let asked = fx.compactMap { e -> [Config]? in if case .analyseAhead(let c, let shown) = e, shown == s.config { return c } else { return nil } }
            if method == .affinity {
                #expect(asked.isEmpty)
                continue
            }
            let configs = try #require(asked.first)
            #expect(configs.count == 3)
            #expect(configs.map(\.gamma).prefix(2) == [5, 3])
            #expect(configs[2].gamma == 4 && configs[2].coreFunctions != config.coreFunctions || configs[2].coreExclude != config.coreExclude)
            // `-` turns the order round; nothing is asked twice for the same edits.
            (s, fx) = Explorer.handle(s, .key(.char("-")))
            (s, fx) = Explorer.handle(s, .engine(.analysed(try engine.analyse(s.config), generation: s.generation)))
            let next = fx.compactMap { e -> [Config]? in if case .analyseAhead(let c, _) = e { return c } else { return nil } }.first
            #expect(next?.map(\.gamma).prefix(2) == [2, 4] || next?.map(\.gamma).prefix(1) == [2])
            (s, fx) = Explorer.handle(s, .key(.char("?")))
            (s, fx) = Explorer.handle(s, .key(.char("q")))
            #expect(!fx.contains { if case .analyseAhead = $0 { return true } else { return false } }, "the same edits are not asked for again")
        }
    }

    /// Work ahead of the user gives way to an edit: a long request (forty configurations)
    /// is stopped when an analysis is submitted, the analysis is reported, the rest of the
    /// request is dropped, and what was worked out ahead equals an analysis from scratch.
    /// An edit asking for the configuration being worked out ahead gets that analysis.
    @Test func workAheadGivesWayToAnEdit() throws {
        let engine = try Fixture.engine()
        let runtime = ExplorerRuntime(engine: engine)
        let ahead = (0..<40).map { g -> Config in
            var c = Fixture.config
            c.gamma = Double(g) / 2
            return c
        }
        runtime.submit([.analyseAhead(ahead, shown: Fixture.config)])
        usleep(20_000)
        var edited = Fixture.config
        edited.gamma = 77
        runtime.submit([.analyse(edited, generation: 1)])
        let events = ModelTests.drain(runtime, seconds: 600)
        let done = events.compactMap { e -> Analysis? in if case .analysedAhead(let a) = e { return a } else { return nil } }
        let analysed = events.compactMap { e -> Analysis? in if case .analysed(let a, _) = e { return a } else { return nil } }
        #expect(analysed.map(\.config) == [edited], "the edit was analysed")
        #expect(done.count < ahead.count, "the rest of the work ahead was dropped (\(done.count) of \(ahead.count) done)")
        #expect(done.allSatisfy(\.computedAhead) && analysed.allSatisfy { !$0.computedAhead })
        let scratch = try Fixture.engine()
        for a in done + analysed {
            let fresh = try scratch.analyse(a.config)
            #expect(a.clustering.chainCluster == fresh.clustering.chainCluster && a.totalLoads == fresh.totalLoads && a.row == fresh.row,
                    "γ \(a.config.gamma): as from scratch")
        }
        // An edit for the configuration under way ahead: one analysis, whichever way it
        // came (taken from the work ahead, or run when that had not started).
        var next = Fixture.config
        next.gamma = 31
        runtime.submit([.analyseAhead([next], shown: Fixture.config)])
        runtime.submit([.analyse(next, generation: 2)])
        let more = ModelTests.drain(runtime, seconds: 600)
        let second = more.compactMap { e -> Analysis? in if case .analysed(let a, _) = e { return a } else { return nil } }
        #expect(second.map(\.config) == [next])
        if let a = second.first {
            let fresh = try scratch.analyse(next)
            #expect(a.clustering.chainCluster == fresh.clustering.chainCluster && a.totalLoads == fresh.totalLoads)
        }
    }
}
