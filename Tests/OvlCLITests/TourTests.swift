import Foundation
import OvlTestSupport
import Testing

/// The README's short tour runs as written, line by line, in a directory that holds
/// nothing but the repository's Samples (what a fresh clone has).
@Suite struct TourTests {
    /// The tour's command lines: the first fenced block after "## A short tour", with
    /// backslash continuations joined.
    static func tourLines() throws -> [String] {
        let readme = try String(contentsOfFile: TestPaths.root + "/README.md", encoding: .utf8)
        guard let start = readme.range(of: "## A short tour") else { return [] }
        let rest = readme[start.upperBound...]
        guard let open = rest.range(of: "```\n") else { return [] }
        guard let close = rest[open.upperBound...].range(of: "```\n") else { return [] }
        let block = rest[open.upperBound..<close.lowerBound].replacingOccurrences(of: "\\\n", with: " ")
        return block.split(separator: "\n").map(String.init).filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
    }

    @Test func everyTourCommandRuns() throws {
        let lines = try TourTests.tourLines()
        #expect(lines.count >= 10, "the tour was not found in README.md")
        let dir = NSTemporaryDirectory() + "ovl-tour-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createSymbolicLink(atPath: dir + "/Samples", withDestinationPath: TestPaths.root + "/Samples")
        let bin = (TestPaths.ovl as NSString).deletingLastPathComponent
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = bin + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        let haveQEMU = FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-x86_64")
        for var line in lines {
            // The explorer needs a terminal: print one screen instead.
            if line.hasPrefix("ovl explore") { line += " --screen 100x30" }
            if !haveQEMU && (line.contains("record") || line.contains("qemu-x86_64") || line.contains("crc.log") || line.contains("crc.trace")) { continue }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", line]
            p.currentDirectoryURL = URL(fileURLWithPath: dir)
            p.environment = env
            let err = Pipe()
            p.standardError = err
            p.standardOutput = FileHandle.nullDevice
            p.standardInput = FileHandle.nullDevice
            try p.run()
            let e = err.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            #expect(p.terminationStatus == 0, "\(line): \(String(decoding: e, as: UTF8.self).prefix(400))")
        }
        for file in ["fig5.svg", "vmlinux", "chosen.toml", "clusters.dot", "crc.ovl"] {
            #expect(FileManager.default.fileExists(atPath: dir + "/" + file), "the tour did not write \(file)")
        }
    }
}
