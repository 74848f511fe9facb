import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import OvlTestSupport
import Testing

/// `ovl optimize` as a user runs it: the configuration it writes is reproduced exactly by
/// analyze, paging is reported at the very memory analyze reports, and bad requests get
/// one clear message and no output.
@Suite struct OptimizeCLITests {
    static let samples = CLITests.samples

    func tempDir() -> String {
        let d = NSTemporaryDirectory() + "ovl-optimize-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    func json(_ text: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test func theWrittenConfigurationIsReproducedByAnalyze() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let toml = dir + "/best.toml"
        let profile = ["--profile", "\(Self.samples)/dijkstra.a.trace"]
        let o = try CLITests.ovl(["optimize", "\(Self.samples)/dijkstra"] + profile + ["--memory", "24K", "--toml", toml, "--json", "--no-progress"])
        try #require(o.status == 0, "optimize: \(o.err)")
        let chosen = try #require(try json(o.out)["chosen"] as? [String: Any])
        let memory = try #require(chosen["totalMemory"] as? Int)
        #expect(memory <= 24 * 1024)
        let phase = try #require((chosen["phases"] as? [[String: Any]])?.first)
        let a = try CLITests.ovl(["analyze", "\(Self.samples)/dijkstra"] + profile + ["--config", toml, "--json", "--no-progress"])
        try #require(a.status == 0, "analyze: \(a.err)")
        let report = try json(a.out)
        #expect(report["totalMemory"] as? Int == memory)
        #expect((report["loads"] as? NSNumber)?.intValue == (phase["loads"] as? NSNumber)?.intValue)
        let paging = try #require(report["paging"] as? [String: Any])
        #expect((paging["loads"] as? NSNumber)?.intValue == (phase["pagingLoads"] as? NSNumber)?.intValue)
        // And the configuration rewrites into an image that runs like the original.
        let img = dir + "/d.ovl"
        let w = try CLITests.ovl(["rewrite", "\(Self.samples)/dijkstra"] + profile + ["--config", toml, "-o", img, "--no-progress"])
        try #require(w.status == 0, "rewrite: \(w.err)")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: img)
        p.arguments = ["300", "42", "150"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let got = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(got == FileManager.default.contents(atPath: "\(Self.samples)/dijkstra.a.out"))
    }

    @Test func theFrontierComesWithPagingFigure2AndHeldOutCosts() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let o = try CLITests.ovl(["optimize", "\(Self.samples)/sortcb", "--profile", "\(Self.samples)/sortcb.id.trace",
                                  "--evaluate", "\(Self.samples)/sortcb.name.trace", "--frontier", "--svg", dir + "/f.svg", "--no-progress"])
        try #require(o.status == 0, "optimize: \(o.err)")
        #expect(o.out.contains("paging") && o.out.contains("Belady") && o.out.contains("Fig. 2"))
        #expect(o.out.contains("sortcb.name.trace loads"))
        let svg = try String(contentsOfFile: dir + "/f.svg", encoding: .utf8)
        let parser = XMLParser(data: Data(svg.utf8))
        let counter = ElementCounter()
        parser.delegate = counter
        #expect(parser.parse(), "the frontier SVG is well-formed XML")
        #expect(counter.counts["polyline", default: 0] >= 2, "ovl and paging are drawn")
    }

    @Test func anImpossibleBudgetSaysTheSmallestFeasibleMemory() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let o = try CLITests.ovl(["optimize", "\(Self.samples)/crc", "--profile", "\(Self.samples)/crc.small.trace",
                                  "--memory", "2K", "--toml", dir + "/x.toml", "--no-progress"])
        #expect(o.status == 1)
        #expect(o.err.contains("smallest feasible total memory is"), "\(o.err)")
        #expect(o.err.split(separator: "\n").count == 1)
        #expect(!FileManager.default.fileExists(atPath: dir + "/x.toml"))
    }

    @Test(arguments: [
        (["--memory", "0"], "--memory must be a positive"),
        (["--max-cost", "-1"], "--max-cost must be"),
        (["--frontier", "--buffer-sizes", "8"], "smaller than the smallest code buffer"),
        (["--frontier", "--buffer-counts", "0"], "--buffer-counts must list"),
        (["--frontier", "--cost-phase", "nosuch"], "names no profile"),
        ([], "say what to optimise for"),
        (["--frontier", "--toml", "/tmp/never-written.toml"], "--toml writes the chosen point"),
    ])
    func badRequestsGetOneClearMessage(_ args: [String], _ message: String) throws {
        let o = try CLITests.ovl(["optimize", "\(Self.samples)/crc", "--profile", "\(Self.samples)/crc.small.trace", "--no-progress"] + args)
        #expect(o.status == 1, "\(args)")
        #expect(o.err.contains(message), "\(args): \(o.err)")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/never-written.toml"))
    }

    @Test func withoutATraceItSaysWhy() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let o = try CLITests.ovl(["optimize", "\(Self.samples)/crc", "--frontier", "--no-progress"])
        #expect(o.status == 1)
        #expect(o.err.contains("needs at least one trace"))
    }
}
