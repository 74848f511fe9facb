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
