import Foundation
import OvlTestSupport
import OvlCore
import Testing

/// One line of `Samples/manifest.tsv`.
struct SampleRun: Sendable, CustomStringConvertible {
    var binary: String
    var input: String
    var args: [String]
    var description: String { "\(binary).\(input)" }
}

enum Fixture {
    static let root = TestPaths.root
    static let samples = root + "/Samples/bin"

    static let runs: [SampleRun] = {
        let text = (try? String(contentsOfFile: root + "/Samples/manifest.tsv", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            if line.hasPrefix("#") || line.trimmingCharacters(in: .whitespaces).isEmpty { return nil }
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= 5 else { return nil }
            return SampleRun(binary: f[0], input: f[3], args: f[4].split(separator: " ").map(String.init))
        }
    }()

    static let ovl = TestPaths.ovl

    static func tempDir() -> String {
        let d = NSTemporaryDirectory() + "ovl-rewrite-tests-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    struct Ran { var stdout: Data; var stderr: String; var status: Int32 }

    /// Runs a program; `cleanEnvironment` gives it `env` and nothing else.
    static func run(_ path: String, _ args: [String], env: [String: String] = [:], cleanEnvironment: Bool = false, cwd: String? = nil) throws -> Ran {
        var e = cleanEnvironment ? [:] : ProcessInfo.processInfo.environment
        for (k, v) in env { e[k] = v }
        // An image written a moment ago can be "busy" for a moment: a process another
        // test forked while the file was open for writing holds the descriptor until it
        // execs. The kernel refuses to run it then (ETXTBSY); try again shortly.
        var attempt = 0
        while true {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: path)
            p.arguments = args
            p.environment = e
            if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
            let out = Pipe(), err = Pipe()
            p.standardOutput = out
            p.standardError = err
            p.standardInput = FileHandle(forReadingAtPath: "/dev/null")
            do {
                try p.run()
            } catch let error as NSError where attempt < 100
                && (error.userInfo[NSUnderlyingErrorKey] as? NSError)?.code == Int(ETXTBSY) {
                attempt += 1
                usleep(20_000)
                continue
            }
            return try finish(p, out: out, err: err)
        }
    }

    private static func finish(_ p: Process, out: Pipe, err: Pipe) throws -> Ran {
        let errData = Box<Data>(Data())
        let t = Thread { errData.value = err.fileHandleForReading.readDataToEndOfFile() }
        t.start()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        while !t.isFinished { usleep(1000) }
        return Ran(stdout: o, stderr: String(decoding: errData.value, as: UTF8.self), status: p.terminationStatus)
    }

    static func expected(_ r: SampleRun) -> (Data, Int32) {
        let out = FileManager.default.contents(atPath: "\(samples)/\(r.binary).\(r.input).out") ?? Data()
        let st = (try? String(contentsOfFile: "\(samples)/\(r.binary).\(r.input).status", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "0"
        return (out, Int32(st) ?? -1)
    }

    /// Opens a sample with one trace, at the default configuration or the stress one
    /// (γ = 0, the smallest buffer that holds the largest chain).
    static func session(_ binary: String, trace: String, stress: Bool) throws -> Session {
        let s = try Session.open(image: "\(samples)/\(binary)", profiles: ["\(samples)/\(trace).trace"], config: Config(), showProgress: false)
        if stress {
            var c = s.config
            c.gamma = 0
            c.bufferSize = Rewriter.smallestBuffer(s)
            try s.update(c)
        }
        return s
    }

    /// The loads the overlay manager counted, from its OVL_STATS file.
    static func countedLoads(_ path: String) throws -> (loads: UInt64, perCluster: [UInt64]) {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let obj = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let clusters = (obj["clusters"] as! [[String: Any]]).map { ($0["loads"] as! NSNumber).uint64Value }
        return ((obj["loads"] as! NSNumber).uint64Value, clusters)
    }
}

final class Box<T>: @unchecked Sendable { var value: T; init(_ v: T) { value = v } }

/// Same-input musl runs whose per-cluster loads equalled the replay exactly / all such runs.
let exactRuns = Box<(Int, Int)>((0, 0))

/// Around `DifferentialTests`, once: at least half the same-input musl runs counted
/// exactly the replayed loads in every cluster. (On the committed samples 148 of 156 do;
/// the rest differ by one load in one or two clusters, see `checkRewritten`.) A manager
/// or replay that drifts fails this long before it leaves the per-cluster bounds.
struct MostRunsAreExact: SuiteTrait, TestScoping {
    var isRecursive: Bool { false }
    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        exactRuns.value = (0, 0)
        try await function()
        let (exact, all) = exactRuns.value
        #expect(all == 0 || exact * 2 >= all, "only \(exact) of \(all) same-input musl runs counted exactly the replayed loads")
    }
}

/// Rewrites `run`'s program with `trace`, runs every input in `inputs` on the image with
/// each backend, and checks output, status and the manager's load count against the
/// replay of that input's trace.
func checkRewritten(_ binary: String, trace: String, inputs: [SampleRun], stress: Bool) throws {
    let s = try Fixture.session(binary, trace: trace, stress: stress)
    let c = s.cluster(recordEvents: false)
    let dir = Fixture.tempDir()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    for backend in StorageBackend.allCases {
        let r = try Rewriter.rewrite(session: s, clustering: c, storage: backend)
        let image = "\(dir)/\(binary).\(backend).ovl"
        FileManager.default.createFile(atPath: image, contents: Data(r.image), attributes: [.posixPermissions: 0o755])
        for input in inputs {
            let stats = "\(dir)/stats.json"
            try? FileManager.default.removeItem(atPath: stats)
            let ran = try Fixture.run(image, input.args, env: ["OVL_STATS": stats], cwd: dir)
            let (out, status) = Fixture.expected(input)
            let what = "\(binary) traced on \(trace), run on \(input.input), \(backend) store\(stress ? ", stress config" : "")"
            #expect(ran.stdout == out, "stdout differs: \(what); stderr: \(ran.stderr.prefix(300))")
            #expect(ran.status == status, "exit status \(ran.status), expected \(status): \(what)")
            // Model against reality on the host processor: the replay of the committed
            // trace of this input (recorded under qemu-x86_64, in whatever environment
            // build.sh ran) against the image's clustering predicts the manager's count.
            //
            // Exactness is proven by ModelEqualsRealityTests, which records and runs both
            // under QEMU with the same environment. Here a difference is inherent: a few
            // libc paths depend on addresses and on the processor, not on the input — musl's
            // memset/memcpy take alignment paths that depend on where the stack lands (the
            // environment's size moves it), and glibc's IFUNC resolvers pick other string
            // functions for the host than for QEMU's CPU: the AVX2/EVEX variants the host
            // gets never ran in the trace, so they sit in cold clusters and the glibc
            // images load 1.3–6× what the replay says. So the check here is, for musl: the
            // total within 5 % of the replay (+4), and every cluster within 5 % of its own
            // predicted count (+2), so a cluster predicted at 5 loads may be off by 2, not
            // by a share of the whole run; most same-input runs must be exact
            // (`MostRunsAreExact`). The slack is the stack: the image runs natively with
            // another argv[0] and environment than the QEMU recording (even the memory and
            // file images' names differ in length), and on the committed samples that
            // moves a handful of runs by one load in one or two clusters. For glibc only
            // that behaviour is identical.
            let profile = try ProfileLoader.load(path: "\(Fixture.samples)/\(input.binary).\(input.input).trace", program: s.program, chains: s.chains, showProgress: false)
            let predicted = CostModel.replay(CostModel.compact(profile), chainCluster: r.chainCluster, clusters: r.clusterCount, buffers: 1)
            let counted = try Fixture.countedLoads(stats)
            let glibc = binary.hasSuffix("-glibc")
            let total = predicted.reduce(0, +)
            let bound = Int64(total / 20) + 4
            #expect(counted.perCluster.count == predicted.count, "cluster count differs: \(what)")
            if glibc { continue }
            #expect(abs(Int64(counted.loads) - Int64(total)) <= bound, "loads counted \(counted.loads), predicted \(total): \(what)")
            for k in 0..<min(predicted.count, counted.perCluster.count) {
                let own = Int64(predicted[k] / 20) + 2
                #expect(abs(Int64(counted.perCluster[k]) - Int64(predicted[k])) <= own, "cluster \(k): counted \(counted.perCluster[k]), predicted \(predicted[k]): \(what)")
            }
            if !glibc && input.binary == binary && trace == "\(binary).\(input.input)" {
                exactRuns.value.0 += counted.perCluster == predicted ? 1 : 0
                exactRuns.value.1 += 1
            }
        }
    }
}

@Suite(.serialized, MostRunsAreExact()) struct DifferentialTests {
    static let programs: [String] = {
        var seen: [String] = []
        for r in Fixture.runs where !seen.contains(r.binary) { seen.append(r.binary) }
        return seen
    }()

    @Test(arguments: Fixture.runs)
    func rewrittenRunsLikeTheOriginalAtTheDefaultConfiguration(_ run: SampleRun) throws {
        try checkRewritten(run.binary, trace: "\(run.binary).\(run.input)", inputs: [run], stress: false)
    }

    @Test(arguments: Fixture.runs)
    func rewrittenRunsLikeTheOriginalAtTheStressConfiguration(_ run: SampleRun) throws {
        try checkRewritten(run.binary, trace: "\(run.binary).\(run.input)", inputs: [run], stress: true)
    }

    /// Correctness never depends on the profile: trained on one input, run on the others.
    @Test(arguments: programs)
    func anotherInputsProfileGivesTheSameBehaviour(_ binary: String) throws {
        let runs = Fixture.runs.filter { $0.binary == binary }
        guard runs.count > 1 else { return }
        let trainer = runs[0]
        try checkRewritten(binary, trace: "\(binary).\(trainer.input)", inputs: Array(runs.dropFirst()), stress: true)
        try checkRewritten(binary, trace: "\(binary).\(runs.last!.input)", inputs: Array(runs.dropLast()), stress: false)
    }
}

/// Model equals reality, exactly. The differential tests above run the images natively
/// against traces recorded under QEMU, which differ in the places their comments explain.
/// Here both sides run on the same (emulated) processor with the same stack: each input is
/// recorded afresh under `qemu-x86_64` with an empty environment (but for OVL_STATS),
/// a fixed argv[0] and an image path of the same length as the rewritten image's, then
/// the image rewritten from that trace runs under QEMU the same way. Every load the
/// manager counts, in total and per cluster, must be one the replay predicted.
@Suite(.serialized) struct ModelEqualsRealityTests {
    static let qemu = Recorder.which("qemu-x86_64")

    /// Records `run` afresh under QEMU in `dir` (empty environment but OVL_STATS, argv[0]
    /// the sample's name) and checks the original's behaviour; returns the copied image,
    /// the exec log, the stats path and the expected output and status.
    static func recordUnderQEMU(_ qemu: String, _ run: SampleRun, in dir: String) throws
        -> (image: String, log: String, stats: String, out: Data, status: Int32) {
        let original = "\(dir)/a.bin", log = "\(dir)/exec.log", stats = "\(dir)/stats.json"
        try FileManager.default.copyItem(atPath: "\(Fixture.samples)/\(run.binary)", toPath: original)
        let recorded = try Fixture.run(qemu, ["-d", "exec,nochain", "-D", log, "-0", run.binary, original] + run.args,
                                       env: ["OVL_STATS": stats], cleanEnvironment: true, cwd: dir)
        let (out, status) = Fixture.expected(run)
        #expect(recorded.stdout == out && recorded.status == status, "the original under QEMU: \(run)")
        return (original, log, stats, out, status)
    }

    @Test(arguments: Fixture.runs)
    func managerCountsExactlyTheReplayedLoadsUnderQEMU(_ run: SampleRun) throws {
        let qemu = try #require(Self.qemu, "qemu-x86_64 is needed (scripts/deps.sh installs qemu-user)")
        let dir = Fixture.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (original, log, stats, out, status) = try Self.recordUnderQEMU(qemu, run, in: dir)
        let env = ["OVL_STATS": stats]

        let s = try Session.open(image: original, profiles: [log], config: Config(), showProgress: false)
        let profile = s.profiles[0]
        for (stress, backend) in [(false, StorageBackend.memory), (false, .file), (true, .memory)] {
            if stress {
                var c = s.config
                c.gamma = 0
                c.bufferSize = Rewriter.smallestBuffer(s)
                try s.update(c)
            }
            let r = try Rewriter.rewrite(session: s, clustering: s.cluster(recordEvents: false), storage: backend)
            let image = "\(dir)/b.bin"
            try? FileManager.default.removeItem(atPath: image)
            FileManager.default.createFile(atPath: image, contents: Data(r.image), attributes: [.posixPermissions: 0o755])
            try? FileManager.default.removeItem(atPath: stats)
            let ran = try Fixture.run(qemu, ["-0", run.binary, image] + run.args, env: env, cleanEnvironment: true, cwd: dir)
            let what = "\(run), \(backend) store\(stress ? ", stress config" : "")"
            #expect(ran.stdout == out, "stdout differs: \(what); stderr: \(ran.stderr.prefix(300))")
            #expect(ran.status == status, "exit status \(ran.status), expected \(status): \(what)")
            let predicted = CostModel.replay(CostModel.compact(profile), chainCluster: r.chainCluster, clusters: r.clusterCount, buffers: 1)
            let counted = try Fixture.countedLoads(stats)
            #expect(counted.loads == predicted.reduce(0, +), "loads counted \(counted.loads), replayed \(predicted.reduce(0, +)): \(what)")
            #expect(counted.perCluster == predicted, "per-cluster loads differ: \(what)")
            // The engine's own figure (what `ovl analyze` prints) is the same number when
            // no cluster had to be kept resident by the rewriter.
            if r.demotedClusters.isEmpty {
                let engine = CostModel(session: s).costs(s.cluster(recordEvents: false))
                #expect(engine.first?.loads == counted.loads, "ovl analyze's loads differ from the manager's: \(what)")
            }
        }
    }
}

@Suite(.serialized) struct RewriteCLITests {
    func ovl(_ args: [String]) throws -> Fixture.Ran { try Fixture.run(Fixture.ovl, args) }

    @Test func writesAnImageThatToolsReadAndThatRuns() throws {
        let dir = Fixture.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for backend in ["memory", "file"] {
            let out = "\(dir)/crc.\(backend)"
            let r = try ovl(["rewrite", "\(Fixture.samples)/crc", "--profile", "\(Fixture.samples)/crc.small.trace", "--storage", backend, "-o", out, "--no-progress"])
            #expect(r.status == 0, "\(r.stderr)")
            let ran = try Fixture.run(out, ["8"])
            #expect(ran.stdout == Fixture.expected(Fixture.runs.first { $0.binary == "crc" && $0.input == "small" }!).0)
            for tool in [["readelf", "-a", "-W"], ["objdump", "-d"]] {
                let t = try Fixture.run("/usr/bin/env", tool + [out])
                #expect(t.status == 0 && t.stderr.isEmpty, "\(tool[0]) complains: \(t.stderr.prefix(500))")
            }
            let syms = try Fixture.run("/usr/bin/env", ["readelf", "-sW", out])
            let text = String(decoding: syms.stdout, as: UTF8.self)
            for name in ["_dynamic_call", "_dynamic_jmp", "ovl_cluster_0", "ovl_code_buffer"] {
                #expect(text.contains(name), "no symbol \(name)")
            }
            // The file backend keeps clusters out of every loadable segment.
            if backend == "file" {
                let l = String(decoding: try Fixture.run("/usr/bin/env", ["readelf", "-lW", out]).stdout, as: UTF8.self)
                #expect(!l.contains(".ovl.store"))
            }
        }
    }

    @Test func refusesAnImageWithoutRelocations() throws {
        let dir = Fixture.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "int main(void){return 0;}\n".write(toFile: "\(dir)/t.c", atomically: true, encoding: .utf8)
        let cc = try Fixture.run("/usr/bin/env", ["musl-gcc", "-static", "-O2", "-fno-pie", "-no-pie", "\(dir)/t.c", "-o", "\(dir)/t"])
        try #require(cc.status == 0, "musl-gcc: \(cc.stderr)")
        let r = try ovl(["rewrite", "\(dir)/t", "-o", "\(dir)/t.ovl", "--no-progress"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("--emit-relocs"))
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/t.ovl"))
    }

    @Test func refusesAPIE() throws {
        let dir = Fixture.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "int main(void){return 0;}\n".write(toFile: "\(dir)/t.c", atomically: true, encoding: .utf8)
        let cc = try Fixture.run("/usr/bin/env", ["gcc", "-O2", "-fPIE", "-pie", "-Wl,--emit-relocs", "\(dir)/t.c", "-o", "\(dir)/t"])
        try #require(cc.status == 0, "gcc: \(cc.stderr)")
        let r = try ovl(["rewrite", "\(dir)/t", "-o", "\(dir)/t.ovl", "--no-progress"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("position-independent"))
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/t.ovl"))
    }

    /// The committed extract was built before config.fragment gained the PVH entry: the
    /// kernel rewriter refuses it, saying which options to set.
    @Test func refusesALinuxKernelWithoutAPVHEntry() throws {
        let dir = Fixture.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let xz = try Fixture.run("/usr/bin/env", ["xz", "-dkf", "-c", Fixture.root + "/Samples/linux/extract/vmlinux.xz"])
        try #require(xz.status == 0, "xz: \(xz.stderr)")
        try xz.stdout.write(to: URL(fileURLWithPath: "\(dir)/vmlinux"))
        let r = try ovl(["rewrite", "\(dir)/vmlinux", "-o", "\(dir)/vmlinux.ovl", "--no-progress"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("no PVH entry") && r.stderr.contains("CONFIG_PVH=y"), "stderr: \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/vmlinux.ovl"))
    }

    @Test func refusesABufferTooSmallForTheManager() throws {
        let dir = Fixture.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try ovl(["rewrite", "\(Fixture.samples)/crc", "--profile", "\(Fixture.samples)/crc.small.trace", "--buffer", "8", "-o", "\(dir)/t.ovl", "--no-progress"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("buffer"))
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/t.ovl"))
    }

    @Test func neverOverwritesTheInput() throws {
        let dir = Fixture.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: "\(Fixture.samples)/crc", toPath: "\(dir)/crc")
        let before = FileManager.default.contents(atPath: "\(dir)/crc")
        let r = try ovl(["rewrite", "\(dir)/crc", "-o", "\(dir)/crc", "--no-progress"])
        #expect(r.status != 0)
        #expect(FileManager.default.contents(atPath: "\(dir)/crc") == before)
    }
}
