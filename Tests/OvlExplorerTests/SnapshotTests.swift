import OvlCore
@testable import OvlExplorer
import Testing

/// Every view of the bundled sample at 80×24 and 120×40, compared with reviewed text.
@Suite("Snapshots")
struct SnapshotTests {
    /// A view and the keys that reach it from the start.
    static let views: [(name: String, keys: String)] = [
        ("partition", ""),
        ("partition-filtered", "fcmp<Enter>"),
        ("function-chains", "/merge_sort<Enter><Enter>"),
        ("clusters", "2"),
        ("cluster-chains", "2<Enter>"),
        ("chain-blocks", "2<Enter><Enter>"),
        ("disassembly", "2<Enter><Enter><Enter>"),
        ("graph", "3"),
        ("steps", "4"),
        ("steps-next-merge", "4jjjjjjjjjjjjjjjjjjjj]"),
        ("sweep", "5"),
        ("config", "6"),
        ("help", "?"),
        ("export-menu", "E"),
    ]

    @Test("each view renders as reviewed", arguments: [(80, 24), (120, 40)])
    func views(size: (Int, Int)) throws {
        let engine = try Fixture.engine()
        for (name, keys) in Self.views {
            let d = ExplorerDriver(engine: engine, config: Fixture.config, width: size.0, height: size.1)
            d.type(keys)
            expectSnapshot(d.screen, "\(name)-\(size.0)x\(size.1)")
        }
    }

    @Test func asciiLook() throws {
        let engine = try Fixture.engine()
        for (name, keys) in [("partition", ""), ("clusters", "2"), ("graph", "3")] {
            let d = ExplorerDriver(engine: engine, config: Fixture.config, width: 80, height: 24, glyphs: .ascii)
            d.type(keys)
            let text = d.screen
            #expect(text.unicodeScalars.allSatisfy { $0.isASCII }, "\(name) draws only ASCII")
            expectSnapshot(text, "ascii-\(name)-80x24")
        }
    }

    @Test func tooSmallTerminalSaysSo() throws {
        let d = try Fixture.driver(width: 40, height: 10)
        #expect(d.screen.contains("needs at least 60×14"))
        #expect(d.screen.contains("this terminal is 40×10"))
        d.resize(width: 120, height: 40)
        #expect(d.screen.contains("1 Partition"))
    }
}
