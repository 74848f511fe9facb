import Foundation
import OvlCore
@testable import OvlExplorer
import Testing

/// What a first-time user tripped over (issue 13), as key sequences.
@Suite("First use")
struct NewcomerTests {
    /// `q` with edits that were never exported asks first; a second `q` quits. After a
    /// TOML export the edits are saved and `q` quits at once.
    @Test func quitWithUnsavedEditsAsks() throws {
        let d = try Fixture.driver()
        d.type("++")
        d.type("q")
        #expect(d.state.exitStatus == nil, "the first q with unsaved edits does not quit")
        #expect(d.state.message?.text.contains("2 edits have not been exported") == true, "\(String(describing: d.state.message))")
        d.type("j")  // any other key: the question is dropped
        d.type("q")
        #expect(d.state.exitStatus == nil)
        d.type("q")
        #expect(d.state.exitStatus == 0)

        let e = try Fixture.driver()
        e.type("+")
        let path = Fixture.tempDir() + "/saved.toml"
        e.type("Et<C-u>\(path)<Enter>")
        #expect(FileManager.default.fileExists(atPath: path))
        e.type("q")
        #expect(e.state.exitStatus == 0, "exported edits are saved: q quits at once")

        let f = try Fixture.driver()
        f.type("q")
        #expect(f.state.exitStatus == 0, "no edits: q quits at once")
    }

    /// The γ and buffer prompts select the old value: typing replaces it, Right keeps it.
    @Test func promptsReplaceTheSelectedOldValue() throws {
        let d = try Fixture.driver()
        d.type("=50<Enter>")
        #expect(d.state.config.gamma == 50)
        d.type("B4K<Enter>")
        #expect(d.state.config.bufferSize == 4096)
        d.type("=<Right>5<Enter>")
        #expect(d.state.config.gamma == 505, "Right keeps the old value for editing")
        d.type("B<BS>3000<Enter>")
        #expect(d.state.config.bufferSize == 3000)
    }

    /// The header shows the core limit actually in force, max(core × (1 + γ), buffer),
    /// and which of the two it is; at 120 columns it stays with a two-digit γ.
    @Test func headerShowsTheLimitInForce() throws {
        let d = try Fixture.driver(width: 120)
        let a = try #require(d.state.analysis)
        let c = a.clustering
        #expect(c.coreLimit < 2048, "the sample's core × (1 + γ) is below the buffer")
        #expect(d.screen.contains("limit \(Describe.count(2048)) B (buffer)"), "\(d.screen)")
        d.type("=25<Enter>")
        #expect(d.screen.contains("core \(Describe.count(c.coreBaseBytes)) B"), "the core segment survives γ = 25 at 120 columns")
        d.type("=900<Enter>")
        let limit = d.state.analysis!.clustering.coreLimit
        #expect(limit > 2048)
        #expect(d.screen.contains("limit \(Describe.count(limit)) B (γ)"), "\(d.screen)")
        // The Steps view counts core against the same limit.
        d.type("=4<Enter>4")
        #expect(!d.screen.contains("of \(Describe.count(c.coreLimit)) B"), "\(d.screen)")
    }

    /// A buffer smaller than the chains: no "−-4.0%" and no "1 clusters".
    @Test func tinyBufferReadsWell() throws {
        var cfg = Fixture.config
        cfg.bufferSize = 10
        let d = try Fixture.driver(cfg)
        let a = try #require(d.state.analysis)
        #expect(a.row.reductionPercent < 0)
        #expect(!d.screen.contains("−-") && !d.screen.contains("--"), "\(d.screen)")
        #expect(d.screen.contains("+\(Describe.percent(-a.row.reductionPercent))"))
        if a.row.clusters == 1 { #expect(d.screen.contains("1 cluster,") && !d.screen.contains("1 clusters")) }
    }

    /// Adding a core glob that names nothing says so.
    @Test func unmatchedCoreGlobIsReported() throws {
        let d = try Fixture.driver()
        d.type("Cnosuchfn*<Enter>")
        #expect(d.state.message?.text == "core glob 'nosuchfn*' matches no function")
        d.type("Ccmp_*<Enter>")
        #expect(d.state.message?.isError != true)
    }
}

@Suite("First use: the partition list")
struct PartitionReadabilityTests {
    /// The what-if column uses one convention: a signed count of loads saved per KB (+
    /// better, − worse, ∞ when pinning adds no resident code), under a heading with units.
    @Test func whatIfColumnIsSigned() throws {
        let d = try Fixture.driver(width: 120)
        while d.state.partition.sort != .whatIf { d.type("s") }  // sorting by what-if computes every value
        let s = d.state
        let a = try #require(s.current)
        #expect(d.screen.contains("pin: loads saved/KB"))
        var signed = 0
        for f in 0..<s.model.functionCount {
            let (text, _) = PartitionView.whatIfText(f, a.placement[f], s, .unicode)
            #expect(text != "free" && text != "worse" && (text == "-" || !text.hasPrefix("-")), "\(s.model.program.functions[f].name): \(text)")
            if let w = s.whatIf[Int32(f)], w.savedLoads != 0 {
                #expect(text.hasPrefix(w.savedLoads > 0 ? "+" : "−"), "\(text)")
                signed += 1
            }
        }
        #expect(signed > 0, "no what-if value was computed")
    }

    /// Two functions of one name are told apart by their addresses.
    @Test func duplicateNamesShowTheirAddress() throws {
        guard let cc = Fixture.which("musl-gcc") ?? Fixture.which("gcc") else { return }
        let dir = Fixture.tempDir()
        try "static int __attribute__((noinline)) helper(int x) { return x * 3; }\nint a(int x) { return helper(x); }\n"
            .write(toFile: dir + "/a.c", atomically: true, encoding: .utf8)
        try "static int __attribute__((noinline)) helper(int x) { return x + 7; }\nint a(int);\nint main(int c, char **v) { (void)v; return a(c) + helper(c); }\n"
            .write(toFile: dir + "/b.c", atomically: true, encoding: .utf8)
        let r = try Fixture.run(cc, ["-static", "-O1", "-o", dir + "/dup", dir + "/a.c", dir + "/b.c"])
        try #require(r.status == 0, "\(r.err)")
        let engine = try ExplorerEngine.open(image: dir + "/dup", profiles: [], config: Fixture.config, clock: { 0 })
        let m = engine.model
        let helpers = (0..<m.functionCount).filter { m.program.functions[$0].name == "helper" }
        try #require(helpers.count == 2)
        let shown = helpers.map { m.displayName($0) }
        #expect(shown[0] != shown[1])
        for (f, name) in zip(helpers, shown) { #expect(name == "helper @\(String(m.program.functions[f].address, radix: 16))") }
        let main = try #require(m.program.functionIndex(named: "main"))
        #expect(m.displayName(main) == "main")
    }
}
