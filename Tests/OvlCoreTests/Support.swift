import Foundation
import OvlTestSupport
@testable import OvlCore

/// Paths and helpers shared by the engine's tests.
enum Fixture {
    static let root = TestPaths.root
    static let samples = root + "/Samples/bin"

    /// Every committed sample binary.
    static var sampleBinaries: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: samples)) ?? []
        return names.filter { !$0.contains(".") }.sorted().map { samples + "/" + $0 }
    }

    /// Committed traces of a sample: name → path.
    static func traces(of binary: String) -> [String] {
        let base = (binary as NSString).lastPathComponent
        let names = (try? FileManager.default.contentsOfDirectory(atPath: samples)) ?? []
        return names.filter { $0.hasPrefix(base + ".") && $0.hasSuffix(".trace") && $0.split(separator: ".").count == 3 }
            .sorted().map { samples + "/" + $0 }
    }

    static func tempDir() -> String {
        let d = NSTemporaryDirectory() + "ovl-test-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// Runs a command; returns exit status, standard output and standard error.
    @discardableResult
    static func run(_ exe: String, _ args: [String], stdin: Data? = nil, cwd: String? = nil) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe.contains("/") ? exe : "/usr/bin/env")
        p.arguments = exe.contains("/") ? args : [exe] + args
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let inPipe = Pipe()
        p.standardInput = inPipe
        try p.run()
        if let stdin { inPipe.fileHandleForWriting.write(stdin) }
        try? inPipe.fileHandleForWriting.close()
        final class Box: @unchecked Sendable { var data = Data() }
        let o = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { o.data = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let e = err.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o.data, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    static func have(_ tool: String) -> Bool { Recorder.which(tool) != nil }

    /// Builds a static program from C or assembly source with the given compiler.
    static func build(_ source: String, ext: String, cc: String = "musl-gcc", flags: [String] = []) throws -> String {
        let dir = tempDir()
        let src = dir + "/prog." + ext
        try source.write(toFile: src, atomically: true, encoding: .utf8)
        let exe = dir + "/prog"
        let r = try run(cc, ["-static", "-O2", "-fno-pie", "-no-pie", "-Wl,--emit-relocs"] + flags + ["-o", exe, src])
        guard r.status == 0 else { throw OvlError("compile failed: \(r.err)") }
        return exe
    }
}
