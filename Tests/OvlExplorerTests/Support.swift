import Foundation
import OvlTestSupport
import OvlCore
@testable import OvlExplorer
import Testing

/// Paths and helpers shared by the explorer's tests.
enum Fixture {
    static let root = TestPaths.root
    static let samples = root + "/Samples/bin"
    static let snapshots = root + "/Tests/OvlExplorerTests/Snapshots"

    /// The bundled sample, as `ovl explore` opens it with no arguments.
    static let image = samples + "/sortcb"
    static let profiles = [samples + "/sortcb.id.trace", samples + "/sortcb.name.trace"]

    /// A fixed configuration, so snapshots do not move when defaults change.
    static var config: Config {
        var c = Config()
        c.gamma = 4
        c.bufferSize = 2048
        c.buffers = 1
        c.granularity = .block
        c.corePreset = .auto
        c.pageSize = 2048
        c.pageReadMicroseconds = 130.9
        return c
    }

    /// An engine on the sample with a clock that stands still (the header's timing
    /// reads 0.0 ms in every snapshot).
    static func engine(_ config: Config = Fixture.config) throws -> ExplorerEngine {
        try ExplorerEngine.open(image: image, profiles: profiles, config: config, clock: { 0 })
    }

    static func driver(_ config: Config = Fixture.config, width: Int = 120, height: Int = 40, glyphs: Glyphs = .unicode) throws -> ExplorerDriver {
        ExplorerDriver(engine: try engine(config), config: config, width: width, height: height, glyphs: glyphs)
    }

    static func tempDir() -> String {
        let d = NSTemporaryDirectory() + "ovl-explorer-test-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// Runs a command; returns exit status, standard output and standard error. Uses
    /// posix_spawn and waitpid rather than Foundation's Process, which can miss the exit
    /// of a child that leaves a daemon behind (tmux starting its server), and sends output
    /// to files rather than pipes, which such a daemon would hold open.
    @discardableResult
    static func run(_ exe: String, _ args: [String], environment: [String: String]? = nil) throws -> (status: Int32, out: String, err: String) {
        let path = exe.contains("/") ? exe : (which(exe) ?? exe)
        let base = NSTemporaryDirectory() + "ovl-run-\(UUID().uuidString)"
        defer {
            try? FileManager.default.removeItem(atPath: base + ".out")
            try? FileManager.default.removeItem(atPath: base + ".err")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, base + ".out", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, base + ".err", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var argv: [UnsafeMutablePointer<CChar>?] = ([path] + args).map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        let env = environment ?? ProcessInfo.processInfo.environment
        var envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for e in envp { free(e) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, nil, &argv, &envp)
        guard rc == 0 else { throw OvlError("cannot run \(path): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let o = FileManager.default.contents(atPath: base + ".out") ?? Data()
        let e = FileManager.default.contents(atPath: base + ".err") ?? Data()
        return (code, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    static func which(_ tool: String) -> String? { Recorder.which(tool) }

    /// The `ovl` binary built beside this test bundle.
    static var ovlBinary: String? { TestPaths.builtOvl }
}

/// Compares a screen with its snapshot file; with OVL_UPDATE_SNAPSHOTS=1 in the
/// environment, writes the file instead (then review it by eye before committing).
func expectSnapshot(_ text: String, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let path = "\(Fixture.snapshots)/\(name).txt"
    let update = ProcessInfo.processInfo.environment["OVL_UPDATE_SNAPSHOTS"] == "1"
    let existing = try? String(contentsOfFile: path, encoding: .utf8)
    if update || existing == nil {
        try? FileManager.default.createDirectory(atPath: Fixture.snapshots, withIntermediateDirectories: true)
        try! (text + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        if !update {
            Issue.record("no snapshot \(name).txt: written now; review it and run again", sourceLocation: sourceLocation)
        }
        return
    }
    let want = existing!.hasSuffix("\n") ? String(existing!.dropLast()) : existing!
    if want != text {
        let a = want.split(separator: "\n", omittingEmptySubsequences: false)
        let b = text.split(separator: "\n", omittingEmptySubsequences: false)
        var diff: [String] = []
        for i in 0..<max(a.count, b.count) {
            let x = i < a.count ? String(a[i]) : "<none>", y = i < b.count ? String(b[i]) : "<none>"
            if x != y { diff.append("row \(i)\n  want: \(x)\n  got:  \(y)") }
        }
        Issue.record("screen differs from \(name).txt (OVL_UPDATE_SNAPSHOTS=1 rewrites it):\n\(diff.prefix(12).joined(separator: "\n"))", sourceLocation: sourceLocation)
    }
}
