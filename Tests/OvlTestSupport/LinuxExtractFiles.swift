import Foundation

/// The committed CI extract of the Linux run (`Samples/linux/extract/`): its reduced
/// vmlinux, decompressed with `xz` once per test process, and its two traces. Tests that
/// use it declare `Tools.needed("xz")`.
public enum LinuxExtractFiles {
    public static let dir = TestPaths.root + "/Samples/linux/extract"
    public static let config = TestPaths.root + "/Samples/linux/linux.toml"
    public static let traces = [dir + "/boot.trace", dir + "/workload.trace"]

    /// The path of the decompressed vmlinux (in a temporary folder of this process).
    public static func image() throws -> String {
        try unpacked.get()
    }

    private static let unpacked: Result<String, Error> = Result {
        let xz = try Tools.path("xz")
        let tmp = NSTemporaryDirectory() + "ovl-linux-extract-files-\(getpid())"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        let out = tmp + "/vmlinux"
        FileManager.default.createFile(atPath: out, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: xz)
        p.arguments = ["-dc", dir + "/vmlinux.xz"]
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw Failed(message: "xz -dc \(dir)/vmlinux.xz exited with \(p.terminationStatus)") }
        return out
    }

    struct Failed: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }
}
