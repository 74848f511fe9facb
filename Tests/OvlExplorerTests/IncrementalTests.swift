import Foundation
import OvlTestSupport
import Testing
@testable import OvlCore
@testable import OvlExplorer

/// The explorer reuses what an edit does not change: the core sets it resolved before, the
/// coalescer's state before its first join (kept per core set and buffer size), the
/// paging curve, the analyses of configurations it showed before (undo). After every step
/// of a random sequence of edits (γ up and down, a new buffer size, pinning and unpinning
/// functions, undo and redo) the analysis on screen must equal one computed from scratch
/// by a second session that shares nothing with the explorer's and forgets everything it
/// kept before each analysis.
@Suite struct IncrementalTests {
    /// The from-scratch side: its own program, graph and cost model, all caches emptied.
    final class Scratch {
        let session: Session
        init(image: String, profiles: [String], config: Config) throws {
            session = try Session.open(image: image, profiles: profiles, config: config, showProgress: false)
        }

        func analyse(_ config: Config) throws -> Analysis {
            let p = session.program
            p.coreSets.removeAll()
            p.coreBasis.removeAll()
            p.presetCores.removeAll()
            p.patternMatches.removeAll()
            session.graph.discardPrepared()
            session.startRewriteBasis()
            session.rewriteUnits.removeAll()
            // A new engine: a new cost model (its sequences, paging curves) and model.
            let engine = ExplorerEngine(session: session, clock: { 0 })
            return try engine.analyse(config)
        }
    }

    static func expectSame(_ a: Analysis, _ b: Analysis, _ what: String) {
        #expect(a.config == b.config, "\(what): configuration")
        #expect(a.core.functions == b.core.functions, "\(what): core functions")
        #expect(a.core.functions.allSatisfy { a.core.reason($0)! == b.core.reason($0)! }, "\(what): core reasons")
        let x = a.clustering, y = b.clustering
        #expect(x.chainCluster == y.chainCluster, "\(what): clusters")
        #expect(x.chainState == y.chainState && x.clusterSize == y.clusterSize && x.clusterChains == y.clusterChains, "\(what): cluster contents")
        #expect(x.residentCodeBytes == y.residentCodeBytes && x.coreBaseBytes == y.coreBaseBytes && x.coreLimit == y.coreLimit
                && x.oversizeChains == y.oversizeChains, "\(what): core and oversize")
        #expect(a.events == b.events, "\(what): coalescing events")
        #expect(a.row == b.row, "\(what): Table 1")
        #expect(a.phases == b.phases, "\(what): Table 2 and paging")
        #expect(a.chainLoads == b.chainLoads && a.functionLoads == b.functionLoads && a.clusterLoads == b.clusterLoads, "\(what): loads")
        #expect(a.placement == b.placement, "\(what): placement")
        #expect(a.liveAfter == b.liveAfter && a.coreAfter == b.coreAfter, "\(what): steps")
    }

    /// Drives the explorer through `steps` random edits from `config`, comparing after each.
    /// `ahead`: the work ahead of the user runs too (after every step, as it would while
    /// the user reads the screen), and the analyses it left are the ones edits find.
    static func randomEdits(image: String, profiles: [String], config: Config, seed: UInt64, steps: Int, background: Bool,
                            ahead: Bool = false) throws {
        let engine = try ExplorerEngine.open(image: image, profiles: profiles, config: config, clock: { 0 })
        let d = ExplorerDriver(engine: engine, config: config, width: 120, height: 40, defersBackgroundWork: !background, runsAhead: ahead)
        if ahead && !background { d.settle(aheadOnly: true) }
        var takenAhead = 0
        let scratch = try Scratch(image: image, profiles: profiles, config: config)
        var rng = SplitMix(seed: seed)
        var log: [String] = []
        for step in 0..<steps {
            let pick = rng.next() % 10
            switch pick {
            case 0, 1: d.type("+"); log.append("+")
            case 2: d.type("-"); log.append("-")
            case 3:
                let size = [256, 512, 1024, 2048, 4096][Int(rng.next() % 5)]   // small ones make chains oversize
                d.type("B<C-u>\(size)<Enter>")
                log.append("buffer \(size)")
            case 4, 5, 6:
                // Pin or unpin the function some rows down the partition list.
                let down = Int(rng.next() % 6)
                for _ in 0..<down { d.press(.down) }
                d.press(.char(" "))
                log.append("\(down) down, space")
            case 7, 8: d.type("u"); log.append("undo")
            default: d.press(.ctrl("r")); log.append("redo")
            }
            let shown = try #require(d.state.analysis, "step \(step): an analysis is shown")
            if shown.computedAhead { takenAhead += 1 }
            if !background { ahead ? d.settle(aheadOnly: true) : d.discardDeferred() }
            #expect(shown.config == d.state.config, "step \(step): the analysis shown is of the configuration asked for")
            let fresh = try scratch.analyse(shown.config)
            expectSame(shown, fresh, "seed \(seed) step \(step) after \(log.suffix(3).joined(separator: ", "))")
        }
        // γ steps and pins of the function under the cursor were worked out ahead.
        #expect(!ahead || takenAhead >= steps / 4, "seed \(seed): \(takenAhead) of \(steps) edits found their analysis ready")
        #expect(ahead || takenAhead == 0)
    }

    @Test(arguments: [1, 2, 3] as [UInt64])
    func bundledSample(seed: UInt64) throws {
        try IncrementalTests.randomEdits(image: Fixture.image, profiles: Fixture.profiles, config: Fixture.config, seed: seed, steps: 30, background: true)
    }

    @Test(arguments: [4, 5] as [UInt64])
    func glibcInterpreter(seed: UInt64) throws {
        let s = Fixture.samples
        try IncrementalTests.randomEdits(image: s + "/interp-glibc", profiles: [s + "/interp-glibc.gcd.trace", s + "/interp-glibc.primes.trace"],
                                         config: Fixture.config, seed: seed, steps: 30, background: true)
    }

    @Test(arguments: [7, 8] as [UInt64])
    func bundledSampleWithWorkAhead(seed: UInt64) throws {
        try IncrementalTests.randomEdits(image: Fixture.image, profiles: Fixture.profiles, config: Fixture.config, seed: seed, steps: 30,
                                         background: true, ahead: true)
    }

    @Test func glibcInterpreterWithWorkAhead() throws {
        let s = Fixture.samples
        try IncrementalTests.randomEdits(image: s + "/interp-glibc", profiles: [s + "/interp-glibc.gcd.trace", s + "/interp-glibc.primes.trace"],
                                         config: Fixture.config, seed: 9, steps: 20, background: false, ahead: true)
    }

    @Test(Tools.needed("xz"))
    func linuxExtractWithWorkAhead() throws {
        let image = try LinuxExtractFiles.image()
        let config = try Config.load(path: LinuxExtractFiles.config)
        try IncrementalTests.randomEdits(image: image, profiles: LinuxExtractFiles.traces, config: config,
                                         seed: 10, steps: 8, background: false, ahead: true)
    }

    @Test(Tools.needed("xz"))
    func linuxExtract() throws {
        let image = try LinuxExtractFiles.image()
        let config = try Config.load(path: LinuxExtractFiles.config)
        try IncrementalTests.randomEdits(image: image, profiles: LinuxExtractFiles.traces, config: config,
                                         seed: 6, steps: 14, background: false)
    }
}
