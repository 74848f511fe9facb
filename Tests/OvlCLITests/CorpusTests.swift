import Foundation
import OvlTestSupport
import Testing

/// Every input of the regression corpus (Tests/Corpus) gives one clear error: exit
/// status 1, not a signal; one line on standard error naming the file; nothing written;
/// no temporary directory left behind.
@Suite struct CorpusTests {
    static let corpus = TestPaths.root + "/Tests/Corpus"

    struct Run {
        var status: Int32
        var signalled: Bool
        var pid: Int32
        var err: String
    }

    static func run(_ args: [String], environment: [String: String]? = nil) throws -> Run {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: TestPaths.ovl)
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: TestPaths.root)
        if let environment { p.environment = environment }
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, signalled: p.terminationReason == .uncaughtSignal,
                   pid: p.processIdentifier, err: String(decoding: e, as: UTF8.self))
    }

    static func files(_ kind: String) -> [String] {
        let dir = corpus + "/" + kind
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted().map { dir + "/" + $0 }
    }

    static func managerDirectories(of pid: Int32) -> [String] {
        let tmp = NSTemporaryDirectory()
        return ((try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? []).filter { $0.hasPrefix("ovl-manager-\(pid)-") }
    }

    /// The cases: the command for each corpus file.
    static func cases(output: String) -> [(file: String, args: [String])] {
        var c: [(String, [String])] = []
        for f in files("fdata") + files("trace") { c.append((f, ["analyze", "Samples/bin/crc", "--profile", f])) }
        for f in files("toml") {
            c.append((f, ["analyze", "Samples/bin/crc", "--config", f]))
            c.append((f, ["rewrite", "Samples/bin/crc", "--profile", "Samples/bin/crc.small.trace", "--config", f, "-o", output]))
        }
        for f in files("image") { c.append((f, ["rewrite", f, "--profile", "Samples/bin/crc.small.trace", "-o", output])) }
        return c
    }

    /// Damaged images that are still images (Tests/Corpus/elf-accepted): analyze reads them
    /// without dying of a signal. `gap-before-every-symbol`, found by ovl-fuzz in CI, has
    /// code before any region that could name it (analyze used to trap on the overflow).
    @Test(arguments: files("elf-accepted"))
    func damagedButReadableImagesAreAnalysed(_ file: String) throws {
        let r = try Self.run(["analyze", file, "--no-progress"])
        #expect(!r.signalled, "\(file): killed by a signal: \(r.err.suffix(400))")
        #expect(r.status == 0 || r.status == 1, "\(file): exit \(r.status)")
    }

    @Test func everyCorpusInputGivesOneClearError() throws {
        let dir = NSTemporaryDirectory() + "ovl-corpus-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let output = dir + "/out"
        let cases = CorpusTests.cases(output: output)
        #expect(cases.count >= 8, "the corpus is missing: \(CorpusTests.corpus)")
        for (file, args) in cases {
            let r = try CorpusTests.run(args + ["--no-progress"])
            #expect(!r.signalled && r.status == 1, "\(args): status \(r.status)\(r.signalled ? " (signal)" : ""): \(r.err.prefix(300))")
            let lines = r.err.split(separator: "\n")
            #expect(lines.count == 1, "\(args): \(r.err.prefix(300))")
            #expect(r.err.hasPrefix("ovl: \(file):"), "\(args): \(r.err.prefix(300))")
            #expect(!FileManager.default.fileExists(atPath: output), "\(args) wrote \(output)")
            #expect(CorpusTests.managerDirectories(of: r.pid).isEmpty, "\(args) left a manager directory")
        }
    }

    /// A rewrite killed while the overlay manager is being compiled leaves no
    /// /tmp/ovl-manager-* directory: a `cc` that hangs stands in for a slow compiler.
    @Test func killedRewriteLeavesNoTemporaryDirectory() throws {
        let bin = NSTemporaryDirectory() + "ovl-fakecc-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: bin) }
        try "#!/bin/sh\nexec sleep 3\n".write(toFile: bin + "/cc", atomically: true, encoding: .utf8)
        chmod(bin + "/cc", 0o755)
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = bin + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        // posix_spawn with an empty signal mask and default actions: the test runner's
        // threads block most signals, and a child would inherit that.
        let args = [TestPaths.ovl, "rewrite", TestPaths.root + "/Samples/bin/crc", "--profile", TestPaths.root + "/Samples/bin/crc.small.trace",
                    "-o", bin + "/out", "--no-progress"]
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv = args.map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        #expect(posix_spawn(&pid, TestPaths.ovl, &actions, &attr, argv, envp) == 0)
        // Wait until the manager's directory exists, then terminate the rewrite.
        var seen = false
        for _ in 0..<600 where !seen {
            seen = !CorpusTests.managerDirectories(of: pid).isEmpty
            if !seen { usleep(20_000) }
        }
        #expect(seen, "the rewrite never created its manager directory")
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        #expect(status & 0x7f == SIGTERM, "the rewrite did not die of SIGTERM (status \(status))")
        #expect(CorpusTests.managerDirectories(of: pid).isEmpty, "SIGTERM left a manager directory")
        #expect(!FileManager.default.fileExists(atPath: bin + "/out"))
    }
}
