import Foundation
import OvlCore
import OvlTestSupport
import Testing

/// Several code buffers and the optimiser's configurations, end to end: the rewritten
/// program behaves like the original and its manager counts exactly the loads the replay
/// predicts (both run under QEMU, as in ModelEqualsRealityTests); and the memory `ovl
/// analyze` reports is what the written image holds, summed from its section headers by
/// readelf.
@Suite(.serialized) struct BuffersAndMemoryTests {
    /// The configurations checked: Figure 2 with 2 and 4 buffers, the affinity layout with
    /// 2 buffers and a quarter of the executed code resident, and with 4 small buffers.
    static func configurations(_ s: Session) -> [(String, Config)] {
        var out: [(String, Config)] = []
        for n in [2, 4] {
            var c = s.config
            c.buffers = n
            out.append(("figure2, \(n) buffers", c))
        }
        var a = s.config
        a.method = .affinity; a.buffers = 2; a.residentBudget = s.executedCodeBytes / 4
        out.append(("affinity, 2 buffers, budget \(a.residentBudget)", a))
        var b = s.config
        b.method = .affinity; b.buffers = 4; b.residentBudget = 0; b.bufferSize = max(1024, Rewriter.smallestBuffer(s))
        out.append(("affinity, 4 × \(b.bufferSize) B buffers", b))
        return out
    }

    @Test(arguments: Fixture.runs.filter { !$0.binary.hasSuffix("-glibc") })
    func severalBuffersCountExactlyTheReplayedLoadsUnderQEMU(_ run: SampleRun) throws {
        let qemu = try #require(ModelEqualsRealityTests.qemu, "qemu-x86_64 is needed (scripts/deps.sh installs qemu-user)")
        let dir = Fixture.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let original = "\(dir)/a.bin", log = "\(dir)/exec.log", stats = "\(dir)/stats.json"
        try FileManager.default.copyItem(atPath: "\(Fixture.samples)/\(run.binary)", toPath: original)
        let env = ["OVL_STATS": stats]
        let recorded = try Fixture.run(qemu, ["-d", "exec,nochain", "-D", log, "-0", run.binary, original] + run.args,
                                       env: env, cleanEnvironment: true, cwd: dir)
        let (out, status) = Fixture.expected(run)
        #expect(recorded.stdout == out && recorded.status == status, "the original under QEMU: \(run)")
        let s = try Session.open(image: original, profiles: [log], config: Config(), showProgress: false)
        let compact = CostModel.compact(s.profiles[0])
        for (name, cfg) in Self.configurations(s) {
            try s.update(cfg)
            let c = s.cluster(recordEvents: false)
            let r = try Rewriter.rewrite(session: s, clustering: c)
            let what = "\(run), \(name)"
            #expect(r.demotedClusters.isEmpty, "clusters kept resident by the rewriter: \(r.demotedClusters): \(what)")
            let image = "\(dir)/b.bin"
            try? FileManager.default.removeItem(atPath: image)
            FileManager.default.createFile(atPath: image, contents: Data(r.image), attributes: [.posixPermissions: 0o755])
            try? FileManager.default.removeItem(atPath: stats)
            let ran = try Fixture.run(qemu, ["-0", run.binary, image] + run.args, env: env, cleanEnvironment: true, cwd: dir)
            #expect(ran.stdout == out, "stdout differs: \(what); stderr: \(ran.stderr.prefix(300))")
            #expect(ran.status == status, "exit status \(ran.status), expected \(status): \(what)")
            let predicted = CostModel.replay(compact, chainCluster: r.chainCluster, clusters: r.clusterCount, buffers: cfg.buffers)
            let counted = try Fixture.countedLoads(stats)
            #expect(counted.perCluster == predicted, "per-cluster loads differ: \(what)")
            // And the engine's own figures, what analyze prints: loads, and the bytes those
            // loads copy (analyze weighs each cluster by the bytes the rewriter writes for it).
            let engine = CostModel(session: s).costs(c).first
            #expect(engine?.loads == counted.loads, "analyze's loads differ from the manager's: \(what)")
            let stats = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: stats))) as! [String: Any]
            #expect(engine?.bytesLoaded == (stats["bytesLoaded"] as? NSNumber)?.uint64Value, "analyze's bytes loaded differ from the manager's: \(what)")
        }
    }

    /// analyze's total memory, part by part, equals the written image's: the sizes of its
    /// .ovl sections as readelf reads them (manager code, thunks, resident text, manager
    /// data, zero-filled manager memory with the return stack, buffers).
    @Test(arguments: ["crc", "dijkstra", "fnptr", "sortcb", "sortcb-glibc", "interp-glibc"])
    func analyzeReportsTheMemoryTheWrittenImageHolds(_ binary: String) throws {
        let dir = Fixture.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        guard let trace = Fixture.runs.first(where: { $0.binary == binary }).map({ "\(Fixture.samples)/\(binary).\($0.input).trace" }) else {
            Issue.record("no run of \(binary) in the manifest"); return
        }
        for flags in [[String](), ["--gamma", "0", "--buffers", "2"], ["--method", "affinity", "--resident-budget", "2K", "--buffers", "4", "--buffer", "1K"]] {
            let args = ["\(Fixture.samples)/\(binary)", "--profile", trace, "--no-progress"] + flags
            let a = try Fixture.run(Fixture.ovl, ["analyze"] + args + ["--json"])
            try #require(a.status == 0, "analyze: \(a.stderr)")
            let json = try JSONSerialization.jsonObject(with: a.stdout) as! [String: Any]
            let memory = json["memory"] as! [String: Any]
            #expect(memory["exact"] as? Bool == true)
            let out = "\(dir)/img"
            let w = try Fixture.run(Fixture.ovl, ["rewrite"] + args + ["-o", out])
            try #require(w.status == 0, "rewrite: \(w.stderr)")
            let sections = try Fixture.run("/usr/bin/env", ["readelf", "-SW", out])
            var sizes: [String: Int] = [:]
            for line in String(decoding: sections.stdout, as: UTF8.self).split(separator: "\n") {
                let f = line.replacingOccurrences(of: "[ ", with: "[").split(separator: " ")
                guard f.count > 5, f[1].hasPrefix(".ovl.") else { continue }
                sizes[String(f[1])] = Int(f[5], radix: 16)
            }
            let inMemory = [".ovl.manager", ".ovl.thunks", ".ovl.text", ".ovl.data", ".ovl.bss", ".ovl.buffer"]
            for n in inMemory { #expect(sizes[n] != nil, "\(binary): no section \(n) in \(sizes.keys.sorted())") }
            let sum = inMemory.compactMap { sizes[$0] }.reduce(0, +)
            #expect(json["totalMemory"] as? Int == sum, "\(binary) \(flags): analyze says \(json["totalMemory"] ?? "nothing"), the image's sections hold \(sum)")
            #expect(memory["managerCode"] as? Int == sizes[".ovl.manager"])
            #expect(memory["thunks"] as? Int == sizes[".ovl.thunks"])
            #expect(memory["residentText"] as? Int == sizes[".ovl.text"])
        }
    }
}
