import Foundation

/// The sample `ovl explore` opens when given no image: `Samples/bin/sortcb` with its `id`
/// and `name` traces as two phases, found by walking up from the executable's directory
/// or from the current directory.
public enum BundledSample {
    public static let program = "sortcb"
    public static let phases = ["id", "name"]

    /// The image and its traces, or nil when no `Samples/bin` holding them is found above
    /// any of `directories`.
    public static func locate(from directories: [String]) -> (image: String, profiles: [String])? {
        let fm = FileManager.default
        for start in directories {
            var url = URL(fileURLWithPath: start).standardizedFileURL
            while true {
                let bin = url.appendingPathComponent("Samples/bin")
                let image = bin.appendingPathComponent(program).path
                let traces = phases.map { bin.appendingPathComponent("\(program).\($0).trace").path }
                if fm.isExecutableFile(atPath: image) && traces.allSatisfy({ fm.fileExists(atPath: $0) }) {
                    return (image, traces)
                }
                if url.path == "/" { break }
                url.deleteLastPathComponent()
            }
        }
        return nil
    }

    /// Where to look: the running executable's directory, then the current directory.
    public static var searchDirectories: [String] {
        var dirs: [String] = []
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        if exe.path != "/proc/self/exe" { dirs.append(exe.deletingLastPathComponent().path) }
        else if let e = Bundle.main.executableURL { dirs.append(e.deletingLastPathComponent().path) }
        dirs.append(FileManager.default.currentDirectoryPath)
        return dirs
    }

    public static var notFoundMessage: String {
        "no image given, and the bundled sample (Samples/bin/\(program) with its \(phases.joined(separator: " and ")) traces) is not above the current directory or ovl's own; give one: ovl explore IMAGE --profile TRACE"
    }
}
