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
        let (original, log, stats, out, status) = try ModelEqualsRealityTests.recordUnderQEMU(qemu, run, in: dir)
        let env = ["OVL_STATS": stats]
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

/// The rewritten image leaves the addresses a program can observe in its data as they
/// were: its new segments go below the original image, so the heap (brk) starts where the
/// original's does. A program whose path depends on heap addresses (and that prints the
/// end of its heap) then prints the same and loads exactly what the replay of the
/// original's trace predicts, run under QEMU as the README prescribes.
@Suite(.serialized) struct ObservableAddressTests {
    static let source = """
    #include <stdint.h>
    #include <stdio.h>
    #include <stdlib.h>
    #include <unistd.h>
    __attribute__((noinline)) static unsigned mix_even(unsigned x) { for (int i = 0; i < 40; i++) x = x * 2654435761u + 7; return x; }
    __attribute__((noinline)) static unsigned mix_odd(unsigned x) { for (int i = 0; i < 30; i++) x = (x ^ (x >> 7)) * 40503u + 3; return x; }
    int main(void) {
        unsigned acc = 1;
        for (int i = 0; i < 3000; i++) {
            char *p = malloc(24 + (size_t)(i % 7) * 40);
            acc = ((uintptr_t)p >> 6) & 1 ? mix_odd(acc + (unsigned)i) : mix_even(acc + (unsigned)i);
            if (i % 3) free(p);
        }
        printf("heap end %p, result %u\\n", sbrk(0), acc);
        return 0;
    }
    """

    @Test func heapAddressesAndTheLoadsThatDependOnThemAreTheOriginals() throws {
        let qemu = try #require(ModelEqualsRealityTests.qemu, "qemu-x86_64 is needed (scripts/deps.sh installs qemu-user)")
        let dir = Fixture.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.source.write(toFile: "\(dir)/heap.c", atomically: true, encoding: .utf8)
        let cc = try Fixture.run("/usr/bin/env", ["musl-gcc", "-static", "-O2", "-fno-pie", "-no-pie", "-Wl,--emit-relocs", "\(dir)/heap.c", "-o", "\(dir)/a.bin"])
        try #require(cc.status == 0, "musl-gcc: \(cc.stderr)")
        let log = "\(dir)/exec.log", stats = "\(dir)/stats.json"
        let env = ["OVL_STATS": stats]
        let original = try Fixture.run(qemu, ["-d", "exec,nochain", "-D", log, "-0", "heap", "\(dir)/a.bin"], env: env, cleanEnvironment: true, cwd: dir)
        try #require(original.status == 0)
        let s = try Session.open(image: "\(dir)/a.bin", profiles: [log], config: Config(), showProgress: false)
        var cfg = s.config
        cfg.gamma = 0
        cfg.bufferSize = Rewriter.smallestBuffer(s)
        try s.update(cfg)
        let c = s.cluster(recordEvents: false)
        let r = try Rewriter.rewrite(session: s, clustering: c)
        FileManager.default.createFile(atPath: "\(dir)/b.bin", contents: Data(r.image), attributes: [.posixPermissions: 0o755])
        let ran = try Fixture.run(qemu, ["-0", "heap", "\(dir)/b.bin"], env: env, cleanEnvironment: true, cwd: dir)
        #expect(ran.status == 0, "\(ran.stderr.prefix(300))")
        #expect(String(decoding: ran.stdout, as: UTF8.self) == String(decoding: original.stdout, as: UTF8.self),
                "the heap moved: original printed \(String(decoding: original.stdout, as: UTF8.self)), rewritten \(String(decoding: ran.stdout, as: UTF8.self))")
        let predicted = CostModel.replay(CostModel.compact(s.profiles[0]), chainCluster: r.chainCluster, clusters: r.clusterCount, buffers: 1)
        let counted = try Fixture.countedLoads(stats)
        #expect(counted.perCluster == predicted, "loads counted \(counted.loads), replayed \(predicted.reduce(0, +))")
        // The new segments lie below the original image.
        let elf = try ELFFile(path: "\(dir)/a.bin")
        let lowest = elf.programHeaders.filter { $0.type == ELFFile.PT_LOAD }.map(\.virtualAddress).min()!
        let out = try ELFFile(path: "\(dir)/b.bin")
        #expect(out.programHeaders.filter { $0.type == ELFFile.PT_LOAD }.map(\.virtualAddress).min()! < lowest)
    }
}
