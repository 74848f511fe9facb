import Foundation
import OvlCore
@testable import OvlExplorer
import Testing

/// Exports from the explorer (the E menu) and from `ovl export`.
@Suite("Exports")
struct ExportTests {
    /// Types a path into the export prompt (after clearing the default).
    func export(_ d: ExplorerDriver, key: String, to path: String) {
        d.type("E\(key)<C-u>\(path)<Enter>")
    }

    @Test func exportedTOMLReproducesTheClustering() throws {
        let dir = Fixture.tempDir()
        let d = try Fixture.driver()
        // Change things first: a pin, γ, the buffer, an exclusion.
        d.type("/merge_sort<Enter><Space>+++B<C-u>3K<Enter>X__init_tls<Enter>")
        let path = dir + "/explored.toml"
        export(d, key: "t", to: path)
        #expect(d.exports == [path])
        #expect(d.state.message?.text.hasPrefix("wrote the configuration to \(path)") == true)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let cfg = try Config.parse(text, path: path)
        #expect(cfg == d.state.config)
        #expect(cfg.coreFunctions == ["merge_sort"] && cfg.gamma == 7 && cfg.bufferSize == 3072 && cfg.coreExclude == ["__init_tls"])
        // A new session from the file gives the same Table 1 row and the same clusters.
        let s = try Session.open(image: Fixture.image, profiles: Fixture.profiles, config: cfg, showProgress: false)
        let c = s.cluster(recordEvents: false)
        #expect(s.statistics(c) == d.state.analysis!.row)
        #expect(c.chainCluster == d.state.analysis!.clustering.chainCluster)
        // And the costs agree.
        let costs = CostModel(session: s).costs(c)
        #expect(costs.map(\.loads) == d.state.analysis!.phases.map(\.loads))
    }

    @Test func exportedTOMLReproducesThroughTheCLI() throws {
        guard let ovl = Fixture.ovlBinary else {
            Issue.record("the ovl binary is not built beside the tests (swift build --scratch-path …)")
            return
        }
        let dir = Fixture.tempDir()
        let d = try Fixture.driver()
        d.type("+<Space>")
        export(d, key: "t", to: dir + "/c.toml")
        let r = try Fixture.run(ovl, ["analyze", Fixture.image] + Fixture.profiles.flatMap { ["--profile", $0] } + ["--config", dir + "/c.toml", "--json"])
        #expect(r.status == 0, "\(r.err)")
        let json = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as! [String: Any]
        let row = d.state.analysis!.row
        #expect(json["clusters"] as? Int == row.clusters)
        #expect(json["totalMemory"] as? Int == row.totalMemory)
        #expect(json["residentBytes"] as? Int == row.residentBytes)
        #expect(json["reductionPercent"] as? Double == row.reductionPercent)
    }

    @Test func dotExportHoldsTheWholeGraph() throws {
        let dir = Fixture.tempDir()
        let d = try Fixture.driver()
        d.type("3")
        export(d, key: "d", to: dir + "/g.dot")
        let text = try String(contentsOfFile: dir + "/g.dot", encoding: .utf8)
        let a = d.state.analysis!
        #expect(text.contains("graph \"ovl\" {"))
        #expect(text.hasSuffix("}\n"))
        for k in 0..<a.clustering.clusterCount { #expect(text.contains("  c\(k) [label=")) }
        #expect(text.contains("  resident [label="))
        let edges = text.split(separator: "\n").filter { $0.contains(" -- ") }
        let expected = a.adjacency.neighbours.reduce(0) { $0 + $1.count } / 2
        #expect(edges.count == expected)
        // The heaviest edge of cluster 0 is there with its weight.
        let top = a.adjacency.neighbours[0][0]
        let other = top.node == a.adjacency.residentNode ? "resident" : "c\(top.node)"
        let pair = top.node == a.adjacency.residentNode || top.node > 0 ? "c0 -- \(other)" : "\(other) -- c0"
        #expect(edges.contains { $0.contains(pair) && $0.contains("label=\"\(Describe.count(top.weight))\"") })
    }

    @Test func ldScriptNeedsFunctionGranularity() throws {
        let d = try Fixture.driver()
        d.type("El")
        #expect(d.state.prompt == nil)
        #expect(d.state.message?.isError == true)
        #expect(d.state.message?.text.contains("--granularity function") == true)
    }

    @Test func ldScriptHasOneOverlaySectionPerCluster() throws {
        var cfg = Fixture.config
        cfg.granularity = .function
        let dir = Fixture.tempDir()
        let d = try Fixture.driver(cfg)
        export(d, key: "l", to: dir + "/o.ld")
        let text = try String(contentsOfFile: dir + "/o.ld", encoding: .utf8)
        let a = d.state.analysis!
        #expect(text.contains("OVERLAY"))
        #expect(text.contains("INSERT AFTER .text;"))
        for k in 0..<a.clustering.clusterCount { #expect(text.contains("    .ovl\(k)\n")) }
        #expect(!text.contains(".ovl\(a.clustering.clusterCount)\n"))
        // Every cold function is listed once, resident ones never.
        let p = d.state.model.program
        for (f, pl) in a.placement.enumerated() where !p.functions[f].isGap && p.functions[f].section == ".text" {
            let listed = text.contains("*(.text.\(p.functions[f].name) ")
            #expect(listed == (pl.kind == .cold), "\(p.functions[f].name): \(pl.kind)")
        }
    }

    /// The export menu writes the rewritten image for the configuration on screen, and it
    /// runs like the original.
    @Test func rewrittenImageRunsLikeTheOriginal() throws {
        let d = try Fixture.driver(width: 120, height: 40)
        d.type("E")
        #expect(d.screen.contains("rewritten image"))
        d.type("<Esc>")
        let path = Fixture.tempDir() + "/sortcb.ovl"
        export(d, key: "w", to: path)
        #expect(d.exports == [path], "\(d.state.message?.text ?? "")")
        #expect(d.state.message?.text.hasPrefix("wrote the rewritten image to \(path)") == true)
        #expect(FileManager.default.isExecutableFile(atPath: path))
        // Run it on the input of the first trace and compare with the original's output.
        let manifest = try String(contentsOfFile: Fixture.root + "/Samples/manifest.tsv", encoding: .utf8)
        let line = try #require(manifest.split(separator: "\n").first { $0.hasPrefix("sortcb\t") && $0.split(separator: "\t")[3] == "id" })
        let args = line.split(separator: "\t")[4].split(separator: " ").map(String.init)
        let r = try Fixture.run(path, args)
        let expected = try String(contentsOfFile: Fixture.root + "/Samples/bin/sortcb.id.out", encoding: .utf8)
        #expect(r.out == expected)
        #expect(r.status == 0)
    }

    @Test func exportRefusesToOverwriteAnInput() throws {
        let d = try Fixture.driver()
        export(d, key: "t", to: Fixture.profiles[0])
        #expect(d.state.message?.isError == true)
        #expect(d.state.message?.text.contains("refusing to overwrite") == true)
    }

    @Test func ovlExportCommand() throws {
        guard let ovl = Fixture.ovlBinary else {
            Issue.record("the ovl binary is not built beside the tests")
            return
        }
        let dir = Fixture.tempDir()
        let args = ["export", Fixture.image] + Fixture.profiles.flatMap { ["--profile", $0] }
        var r = try Fixture.run(ovl, args + ["--gamma", "6", "--toml", dir + "/a.toml", "--dot", dir + "/a.dot"])
        #expect(r.status == 0, "\(r.err)")
        let cfg = try Config.load(path: dir + "/a.toml")
        #expect(cfg.gamma == 6)
        #expect(try String(contentsOfFile: dir + "/a.dot", encoding: .utf8).contains("graph \"ovl\""))
        r = try Fixture.run(ovl, args + ["--ld-script", dir + "/a.ld"])
        #expect(r.status == 1)
        #expect(r.err.contains("--granularity function"))
        r = try Fixture.run(ovl, args + ["--granularity", "function", "--ld-script", dir + "/a.ld"])
        #expect(r.status == 0, "\(r.err)")
        #expect(try String(contentsOfFile: dir + "/a.ld", encoding: .utf8).contains("OVERLAY"))
        r = try Fixture.run(ovl, args)
        #expect(r.status != 0)
        #expect(r.err.contains("nothing to export"))
    }

    /// The ld script links: a program built with -ffunction-sections, clustered at function
    /// granularity, relinks with the script beside the default one, and each cluster gets
    /// its own overlay section at the same address.
    @Test func ldScriptLinks() throws {
        guard let ovl = Fixture.ovlBinary else {
            Issue.record("the ovl binary is not built beside the tests")
            return
        }
        guard let cc = Fixture.which("musl-gcc") ?? Fixture.which("gcc"), let objdump = Fixture.which("objdump") else {
            Issue.record("needs gcc or musl-gcc and objdump (scripts/deps.sh installs them)")
            return
        }
        let dir = Fixture.tempDir()
        let src = Fixture.root + "/Samples/src/sortcb.c"
        let flags = ["-static", "-O2", "-fno-pie", "-no-pie", "-ffunction-sections", "-Wl,--emit-relocs"]
        var r = try Fixture.run(cc, flags + ["-o", dir + "/prog", src])
        #expect(r.status == 0, "\(r.err)")
        r = try Fixture.run(ovl, ["export", dir + "/prog", "--granularity", "function", "--buffer", "1K", "--ld-script", dir + "/prog.ld"])
        #expect(r.status == 0, "\(r.err)")
        r = try Fixture.run(cc, flags + ["-Wl,-T," + dir + "/prog.ld", "-o", dir + "/relinked", src])
        #expect(r.status == 0, "relinking with the script: \(r.err)")
        r = try Fixture.run(objdump, ["-h", dir + "/relinked"])
        let lines = r.out.split(separator: "\n").filter { $0.contains(" .ovl") }
        #expect(lines.count >= 2, "overlay sections in the relinked program:\n\(r.out)")
        // OVERLAY gives every section the same address (the code buffer).
        let vmas = Set(lines.map { $0.split(separator: " ", omittingEmptySubsequences: true)[3] })
        #expect(vmas.count == 1)
    }
}
