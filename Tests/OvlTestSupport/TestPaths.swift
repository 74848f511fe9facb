import Foundation

/// Where the tests find the package and the `ovl` binary: one definition for every test
/// target.
public enum TestPaths {
    /// The package root: the nearest folder above this file that holds `Package.swift`.
    public static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
        }
        fatalError("package root not found")
    }()

    /// The committed sample binaries and traces.
    public static let samples = root + "/Samples/bin"

    /// The `ovl` binary SwiftPM built beside the running test bundle (`.build*/debug/ovl`),
    /// or nil when there is none.
    public static let builtOvl: String? = {
        var candidates: [String] = []
        for start in [Bundle.main.bundleURL.path, CommandLine.arguments.first, Bundle.main.executablePath].compactMap({ $0 }) {
            var url = URL(fileURLWithPath: start).standardizedFileURL
            for _ in 0..<4 {
                candidates.append(url.appendingPathComponent("ovl").path)
                url.deleteLastPathComponent()
            }
        }
        for scratch in [".build", ".build-explorer"] { candidates.append("\(root)/\(scratch)/debug/ovl") }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    /// `builtOvl`, for tests that cannot run without it (they fail naming the path tried).
    public static var ovl: String { builtOvl ?? root + "/.build/debug/ovl" }
}
