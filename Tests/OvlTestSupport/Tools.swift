import Foundation
import Testing

/// The external programs some tests run: oracles (objdump, readelf, nm, strip), compilers
/// (gcc, musl-gcc), qemu-x86_64, tmux, xz. `scripts/deps.sh` installs them all.
///
/// A test that needs one says so with the trait `Tools.needed("objdump")`:
///
/// - outside CI, when a tool is missing the test is skipped, and the test report lists it
///   as skipped with the reason (never a silent pass);
/// - in CI (the environment variable `CI` is set, as `.ci/run` does, to anything but
///   empty, `0` or `false`), nothing may be skipped: the test fails, naming the tool.
public enum Tools {
    /// True when running in CI, where every tool must be installed.
    public static let ci: Bool = {
        guard let v = ProcessInfo.processInfo.environment["CI"] else { return false }
        return !["", "0", "false", "no"].contains(v.lowercased())
    }()

    /// The full path of `name` found on PATH, or nil.
    public static func which(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// The tools of `names` that are not installed.
    public static func missing(_ names: [String]) -> [String] { names.filter { which($0) == nil } }

    /// The trait for a test that needs `names`: skipped when one is missing, failed in CI.
    public static func needed(_ names: String...) -> any TestTrait {
        let missing = missing(names)
        let reason = "not installed: \(missing.joined(separator: ", ")) (scripts/deps.sh installs it)"
        if ci { return MustHave(missing: missing, reason: reason) }
        return ConditionTrait.enabled(if: missing.isEmpty, Comment(rawValue: reason))
    }

    /// The path of `name`; throws (a test failure) when it is missing. For tests that run
    /// a tool they declared with `needed`.
    public static func path(_ name: String) throws -> String {
        guard let p = which(name) else { throw Missing(tool: name) }
        return p
    }

    public struct Missing: Error, CustomStringConvertible {
        public let tool: String
        public init(tool: String) { self.tool = tool }
        public var description: String { "\(tool) is not installed (scripts/deps.sh installs it)" }
    }

    /// In CI: the test fails before it runs when a tool it needs is missing.
    struct MustHave: TestTrait, TestScoping {
        let missing: [String]
        let reason: String
        func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
            guard missing.isEmpty else {
                Issue.record("CI must run every test, but it cannot run this one: \(reason)")
                return
            }
            try await function()
        }
    }
}
