import Foundation
import OvlTestSupport
import Testing

/// What a first-time user tripped over (issue 13), through the real binary.
@Suite struct FirstUseTests {
    static func ovl(_ args: [String]) throws -> (status: Int32, out: String, err: String) { try CLITests.ovl(args) }

    static func tempDir() -> String { CLITests.tempDir() }

    /// The configuration is an input too: no output may replace it (nor the image or a
    /// profile), whichever path names it; one message, exit 1, nothing written.
    @Test func outputsNeverReplaceAnInput() throws {
        let dir = FirstUseTests.tempDir()
        let cfg = dir + "/c.toml"
        let original = "gamma = 4\n"
        try original.write(toFile: cfg, atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: dir + "/link.toml", withDestinationPath: cfg)
        let trace = "Samples/bin/crc.small.trace"
        let cases: [[String]] = [
            ["rewrite", "Samples/bin/crc", "--profile", trace, "--config", cfg, "-o", cfg],
            ["sweep", "Samples/bin/crc", "--config", cfg, "--svg", cfg],
            ["export", "Samples/bin/crc", "--config", cfg, "--toml", cfg],
            ["export", "Samples/bin/crc", "--config", cfg, "--dot", dir + "/../" + (dir as NSString).lastPathComponent + "/c.toml"],
            ["export", "Samples/bin/crc", "--config", cfg, "--toml", dir + "/link.toml"],
            ["export", "Samples/bin/crc", "--profile", trace, "--toml", trace],
        ]
        for args in cases {
            let r = try FirstUseTests.ovl(args)
            #expect(r.status == 1, "\(args): \(r.err)")
            #expect(r.err.split(separator: "\n").count == 1, "\(args): \(r.err)")
            #expect(r.err.contains("an input of this run"), "\(args): \(r.err)")
        }
        #expect(try String(contentsOfFile: cfg, encoding: .utf8) == original)
        // Two outputs naming one file.
        let both = try FirstUseTests.ovl(["export", "Samples/bin/crc", "--toml", dir + "/x", "--dot", dir + "/x"])
        #expect(both.status == 1 && both.err.contains("named by both --toml and --dot"), "\(both.err)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/x"))
    }

    /// An output in a directory that does not exist says why.
    @Test func unwritableOutputSaysWhy() throws {
        let r = try FirstUseTests.ovl(["export", "Samples/bin/crc", "--toml", "/nonexistent-ovl-dir/x.toml"])
        #expect(r.status == 1)
        #expect(r.err == "ovl: /nonexistent-ovl-dir/x.toml: cannot be written: the directory /nonexistent-ovl-dir does not exist\n", "\(r.err)")
        let f = try FirstUseTests.ovl(["sweep", "Samples/bin/crc", "--gammas", "0", "--svg", "Samples/bin/crc/fig.svg"])
        #expect(f.status == 1 && f.err.contains("Samples/bin/crc is not a directory"), "\(f.err)")
    }

    /// A dynamically linked program is refused by analyze in one sentence, as by rewrite.
    @Test func dynamicallyLinkedImagesAreRefused() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/gcc") else { return }
        let dir = FirstUseTests.tempDir()
        try "int main(void) { return 0; }\n".write(toFile: dir + "/m.c", atomically: true, encoding: .utf8)
        let cc = Process()
        cc.executableURL = URL(fileURLWithPath: "/usr/bin/gcc")
        cc.arguments = ["-O1", "-o", dir + "/m", dir + "/m.c"]
        try cc.run()
        cc.waitUntilExit()
        try #require(cc.terminationStatus == 0)
        for command in ["analyze", "sweep"] {
            let r = try FirstUseTests.ovl([command, dir + "/m"])
            #expect(r.status == 1)
            #expect(r.out.isEmpty)
            #expect(r.err.hasPrefix("ovl: \(dir)/m: is dynamically linked"), "\(r.err)")
            #expect(r.err.split(separator: "\n").count == 1)
        }
        let w = try FirstUseTests.ovl(["rewrite", dir + "/m", "-o", dir + "/m.ovl"])
        #expect(w.status == 1 && w.err.contains("dynamically linked"), "\(w.err)")
    }

    /// A buffer smaller than most chains: one sentence, not one line naming every chain.
    @Test func tinyBufferIsOneSentence() throws {
        let r = try FirstUseTests.ovl(["analyze", "Samples/bin/crc", "--buffer", "10"])
        #expect(r.status == 0, "\(r.err)")
        let line = try #require(r.out.split(separator: "\n").first { $0.contains("buffer is smaller than") })
        #expect(line.count < 200, "\(line)")
        #expect(!r.out.contains("kept resident, larger than the buffer:"))
        #expect(r.out.split(separator: "\n").allSatisfy { $0.count < 400 })
        #expect(!r.out.contains("-3.9%") || r.out.contains("reduction"))
    }

    /// A core glob that matches nothing is a warning; one that matches is silent.
    @Test func unmatchedCoreGlobWarns() throws {
        let r = try FirstUseTests.ovl(["analyze", "Samples/bin/crc", "--core", "nosuchfn*", "--core", "crc32*"])
        #expect(r.status == 0)
        #expect(r.err == "ovl: warning: core glob 'nosuchfn*' matches no function in Samples/bin/crc\n", "\(r.err)")
    }

    /// --version, and completions that complete file names and the enumerated values.
    @Test func versionAndCompletions() throws {
        let v = try FirstUseTests.ovl(["--version"])
        #expect(v.status == 0 && v.out.hasPrefix("ovl "), "\(v.out)\(v.err)")
        let bash = try FirstUseTests.ovl(["--generate-completion-script", "bash"])
        #expect(bash.status == 0)
        // Every subcommand that takes --profile completes it with file names.
        let profileCases = bash.out.components(separatedBy: "'--profile')").dropFirst()
        #expect(profileCases.count >= 5)
        for c in profileCases { #expect(c.prefix(80).contains("-f"), "\(c.prefix(80))") }
        func values(_ option: String) -> String {
            bash.out.components(separatedBy: "'\(option)')").dropFirst().first.map { String($0.prefix(120)) } ?? ""
        }
        for v in ["'auto'", "'static'", "'linux'", "'none'"] { #expect(values("--preset").contains(v), "--preset: \(values("--preset"))") }
        for v in ["'block'", "'function'"] { #expect(values("--granularity").contains(v), "--granularity: \(values("--granularity"))") }
        for v in ["'memory'", "'file'"] { #expect(values("--storage").contains(v), "--storage: \(values("--storage"))") }
    }

    /// Help text: no line holding a single word from bad wrapping; rewrite's image help
    /// does not offer a kernel.
    @Test func helpTextReadsWell() throws {
        for command in ["convert", "kernel-pins", "rewrite", "analyze", "explore", "export", "sweep", "record"] {
            let r = try FirstUseTests.ovl([command, "--help"])
            #expect(r.status == 0)
            for line in r.out.split(separator: "\n") {
                let words = line.split(separator: " ")
                #expect(!(words.count == 1 && line.count <= 3 && !line.hasPrefix(" ")), "\(command) --help has a line '\(line)'")
            }
        }
        let rw = try FirstUseTests.ovl(["rewrite", "--help"])
        #expect(rw.out.contains("which rewrite refuses"))
    }

    /// Counts agree with their nouns ("1 function ran", not "1 functions ran").
    @Test func singularNouns() throws {
        let dir = FirstUseTests.tempDir()
        let r = try FirstUseTests.ovl(["export", "Samples/bin/crc", "--buffer", "1M", "--toml", dir + "/x.toml"])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.hasPrefix("ovl: 1 cluster, total memory"), "\(r.err)")
    }
}
