import Foundation
import OvlTestSupport
import Testing

/// The real binary in a real terminal: tmux runs `ovl explore`, keys go in with
/// `send-keys`, the screen comes back with `capture-pane`.
@Suite("Terminal (tmux)", .serialized)
struct TerminalTests {
    /// A tmux server of our own, with one session running `command` in a 120×40 window.
    final class Tmux {
        let tmux: String
        let socket = "ovl-test-\(UUID().uuidString.prefix(8))"
        let dir = Fixture.tempDir()

        init(command: String) throws {
            tmux = try Tools.path("tmux")
            // The shell records how the program ended and what the terminal modes were
            // afterwards, then stays so the pane can still be read. It survives Ctrl-C (a
            // trap, which the program does not inherit) to report the status.
            let script = """
                trap 'true' INT
                cd '\(Fixture.root)'
                \(command)
                echo $? > '\(dir)/status'
                stty -a > '\(dir)/stty'
                sleep 60
                """
            try script.write(toFile: dir + "/run.sh", atomically: true, encoding: .utf8)
            let r = try Fixture.run(tmux, ["-L", socket, "-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", "120", "-y", "40",
                                           "env TERM=xterm-256color LANG=C.UTF-8 LC_ALL=C.UTF-8 sh '\(dir)/run.sh'"])
            guard r.status == 0 else { throw TmuxError(message: "tmux new-session failed: \(r.err)") }
        }

        deinit { _ = try? Fixture.run(tmux, ["-L", socket, "kill-server"]) }

        func send(_ keys: String...) throws { try Fixture.run(tmux, ["-L", socket, "send-keys", "-t", "t"] + keys) }

        func screen() throws -> String { try Fixture.run(tmux, ["-L", socket, "capture-pane", "-p", "-t", "t"]).out }

        func paneSize() throws -> String {
            try Fixture.run(tmux, ["-L", socket, "display-message", "-p", "-t", "t", "#{pane_width}x#{pane_height}"]).out
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }

        func resize(_ w: Int, _ h: Int) throws {
            try Fixture.run(tmux, ["-L", socket, "resize-window", "-t", "t", "-x", String(w), "-y", String(h)])
        }

        /// Waits until the screen satisfies `ok`; returns the last screen seen.
        @discardableResult
        func wait(_ what: String, timeout: Double = 30, _ ok: (String) -> Bool) throws -> String {
            let end = Date().addingTimeInterval(timeout)
            var last = ""
            while Date() < end {
                last = try screen()
                if ok(last) { return last }
                Thread.sleep(forTimeInterval: 0.1)
            }
            Issue.record("timed out waiting for \(what); the screen was:\n\(last)")
            return last
        }

        /// The exit status once the program has ended.
        func status(timeout: Double = 15) -> String? {
            let end = Date().addingTimeInterval(timeout)
            while Date() < end {
                if let s = try? String(contentsOfFile: dir + "/status", encoding: .utf8), !s.isEmpty,
                   FileManager.default.fileExists(atPath: dir + "/stty") {
                    Thread.sleep(forTimeInterval: 0.2)
                    return s.trimmingCharacters(in: .whitespacesAndNewlines)
                }
                Thread.sleep(forTimeInterval: 0.1)
            }
            return nil
        }

        /// Whether the terminal is back in its normal (cooked, echoing) mode.
        var terminalRestored: Bool {
            guard let stty = try? String(contentsOfFile: dir + "/stty", encoding: .utf8) else { return false }
            let words = Set(stty.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == ";" }).map(String.init))
            return words.contains("icanon") && words.contains("echo") && !words.contains("-icanon") && !words.contains("-echo")
        }
    }

    struct TmuxError: Error, CustomStringConvertible { let message: String; var description: String { message } }

    func binary() -> String? {
        guard let ovl = Fixture.ovlBinary else {
            Issue.record("the ovl binary is not built beside the tests: build with swift build --scratch-path … first")
            return nil
        }
        return ovl
    }

    @Test(Tools.needed("tmux"))
    func exploreShowsHeaderReactsToKeysAndQuitRestoresTheTerminal() throws {
        guard let ovl = binary() else { return }
        let t = try Tmux(command: "'\(ovl)' explore")
        // With no arguments it opens the bundled sample.
        var s = try t.wait("the header") { $0.contains("ovl explore") && $0.contains("sortcb") && $0.contains("clustered in") }
        #expect(s.contains("1 Partition"))
        #expect(s.contains("function"))
        // Keys: the cluster view, then γ up.
        try t.send("2")
        s = try t.wait("the cluster view") { $0.contains("size against the buffer") }
        try t.send("+")
        // Analysed then, or ahead while the cluster view was read ("clustered ahead in").
        s = try t.wait("γ 5%") { $0.contains("γ 5%") && ($0.contains("clustered in") || $0.contains("clustered ahead in")) }
        // A smaller window: the narrow layout.
        try t.resize(80, 24)
        s = try t.wait("the narrow layout") { $0.contains("size/buffer") }
        #expect(try t.paneSize() == "80x24")
        #expect(s.split(separator: "\n").allSatisfy { $0.count <= 80 })
        try t.resize(120, 40)
        try t.wait("the wide layout again") { $0.contains("size against the buffer") }
        // Help, then back out and quit.
        try t.send("?")
        try t.wait("the help screen") { $0.contains("Everywhere") && $0.contains("this help") }
        try t.send("q")
        try t.wait("the help closing") { !$0.contains("this help") }
        // γ was changed and not exported: the first q says so, the second quits.
        try t.send("q")
        try t.wait("the unsaved-edits warning") { $0.contains("not been exported") }
        try t.send("q")
        let status = t.status()
        #expect(status == "0", "q exits 0")
        #expect(t.terminalRestored, "the terminal is back in cooked mode with echo")
        s = try t.screen()
        #expect(!s.contains("1 Partition"), "the explorer's screen is gone after exit")
    }

    @Test(Tools.needed("tmux"))
    func ctrlCRestoresTheTerminal() throws {
        guard let ovl = binary() else { return }
        let t = try Tmux(command: "'\(ovl)' explore")
        try t.wait("the header") { $0.contains("clustered in") }
        try t.send("4")
        try t.wait("the step view") { $0.contains("coalescing, step by step") }
        try t.send("C-c")
        let status = t.status()
        #expect(status == "130", "Ctrl-C exits 130")
        #expect(t.terminalRestored)
    }

    @Test(Tools.needed("tmux"))
    func asciiAndNoColor() throws {
        guard let ovl = binary() else { return }
        let t = try Tmux(command: "NO_COLOR=1 LANG=C LC_ALL=C '\(ovl)' explore")
        let s = try t.wait("the header") { $0.contains("clustered in") }
        #expect(s.contains("gamma 4%"), "ASCII spells γ out")
        #expect(s.unicodeScalars.allSatisfy { $0.isASCII })
        try t.send("q")
        #expect(t.status() == "0")
        #expect(t.terminalRestored)
    }
}
