import Foundation

/// Ctrl-C during long work (ingesting a log, a sweep): the first SIGINT sets a flag that
/// the work loops poll, so they stop cleanly, remove temporary files and exit 130.
public enum Interrupt {
    nonisolated(unsafe) private static var flag: sig_atomic_t = 0
    nonisolated(unsafe) private static var installed = false

    /// Installs the handler (idempotent). Without it, Ctrl-C kills the process at once.
    public static func install() {
        guard !installed else { return }
        installed = true
        signal(SIGINT) { _ in Interrupt.flag = 1 }
    }

    public static var requested: Bool { flag != 0 }

    /// Throws when Ctrl-C was pressed.
    public static func check() throws {
        if flag != 0 { throw OvlError("interrupted") }
    }

    /// For tests: clear the flag.
    public static func reset() { flag = 0 }
}

/// A progress line on standard error, drawn only when standard error is a terminal and
/// at most a few times a second.
public final class Progress: @unchecked Sendable {
    private let label: String
    private let total: UInt64?
    private let enabled: Bool
    private var lastDraw = Date.distantPast
    private var drawn = false

    public init(_ label: String, total: UInt64?, enabled: Bool = Progress.stderrIsTerminal) {
        self.label = label
        self.total = total
        self.enabled = enabled
    }

    public static var stderrIsTerminal: Bool { isatty(2) != 0 }

    /// Reports `done` units (bytes, or items with `unit`).
    public func update(_ done: UInt64, unit: String = "bytes") {
        guard enabled else { return }
        let now = Date()
        guard now.timeIntervalSince(lastDraw) >= 0.2 else { return }
        lastDraw = now
        var line = "\(label): "
        if unit == "bytes" {
            line += Progress.bytes(done)
            if let t = total, t > 0 { line += " of \(Progress.bytes(t)) (\(min(100, done * 100 / t))%)" }
        } else {
            line += "\(done)"
            if let t = total, t > 0 { line += " of \(t) \(unit) (\(min(100, done * 100 / t))%)" } else { line += " \(unit)" }
        }
        FileHandle.standardError.write(Data(("\r\u{1b}[K" + line).utf8))
        drawn = true
    }

    /// Clears the line.
    public func finish() {
        guard enabled, drawn else { return }
        FileHandle.standardError.write(Data("\r\u{1b}[K".utf8))
        drawn = false
    }

    public static func bytes(_ n: UInt64) -> String {
        let d = Double(n)
        if d >= 1e9 { return String(format: "%.2f GB", d / 1e9) }
        if d >= 1e6 { return String(format: "%.1f MB", d / 1e6) }
        if d >= 1e3 { return String(format: "%.1f KB", d / 1e3) }
        return "\(n) B"
    }
}
