import Foundation
import OvlTestSupport
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

final class Box<T>: @unchecked Sendable { var value: T; init(_ v: T) { value = v } }

/// Counts the elements of an XML document by name and class; fails on malformed XML.
final class ElementCounter: NSObject, XMLParserDelegate {
    var counts: [String: Int] = [:]
    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        counts[name + (attributes["class"].map { "." + $0 } ?? ""), default: 0] += 1
    }
}

/// The real `ovl` binary, run as a user would.
@Suite struct CLITests {
    static let root = TestPaths.root

    static let ovl = TestPaths.ovl

    static let samples = root + "/Samples/bin"

    @discardableResult
    static func ovl(_ args: [String], stdin: Data? = nil) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ovl)
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: root)
        let out = Pipe(), err = Pipe(), inp = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = inp
        try p.run()
        let writer = Thread {
            if let stdin { inp.fileHandleForWriting.write(stdin) }
            try? inp.fileHandleForWriting.close()
        }
        writer.start()
        let o = Box(Data())
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async { o.value = out.fileHandleForReading.readDataToEndOfFile(); done.signal() }
        let e = err.fileHandleForReading.readDataToEndOfFile()
        done.wait()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o.value, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    static func tempDir() -> String {
        let d = NSTemporaryDirectory() + "ovl-cli-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    @Test func analyzePrintsATable1RowAndJSON() throws {
        let trace = CLITests.samples + "/crc.small.trace"
        let text = try CLITests.ovl(["analyze", "Samples/bin/crc", "--profile", trace, "--gamma", "4", "--buffer", "2048"])
        #expect(text.status == 0, "\(text.err)")
        #expect(text.out.contains("clusters"))
        #expect(text.out.contains("reduction"))
        let json = try CLITests.ovl(["analyze", "Samples/bin/crc", "--profile", trace, "--gamma", "4", "--json"])
        #expect(json.status == 0)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any])
        for key in ["gamma", "bufferSize", "clusters", "averageClusterSize", "maxClusterSize", "residentBytes", "totalMemory",
                    "originalTextBytes", "textSectionBytes", "reductionPercent", "clusterList", "loads", "bytesLoaded",
                    "estimatedCostSeconds", "paging", "phases"] {
            #expect(obj[key] != nil, "missing \(key)")
        }
        let list = try #require(obj["clusterList"] as? [[String: Any]])
        #expect(list.count == (obj["clusters"] as? Int ?? -1) + 1)
        #expect(list.contains { $0["resident"] as? Bool == true })
        let total = try #require(obj["totalMemory"] as? Int)
        let original = try #require(obj["originalTextBytes"] as? Int)
        let reduction = try #require(obj["reductionPercent"] as? Double)
        #expect(abs(reduction - Double(original - total) * 100 / Double(original)) < 0.06)
    }

    @Test func sweepPrintsARowPerGamma() throws {
        let svg = CLITests.tempDir() + "/fig5.svg"
        let r = try CLITests.ovl(["sweep", "Samples/bin/sortcb", "--profile", "Samples/bin/sortcb.id.trace",
                                  "--profile", "Samples/bin/sortcb.name.trace", "--json", "--svg", svg])
        #expect(r.status == 0, "\(r.err)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[String: Any]])
        #expect(rows.map { $0["gamma"] as? Double } == [0, 2, 4, 6, 8, 10])
        for row in rows {
            let phases = try #require(row["phases"] as? [[String: Any]])
            #expect(phases.count == 2)
            for p in phases { #expect(p["loads"] != nil && p["bytesLoaded"] != nil && p["estimatedCostSeconds"] != nil) }
        }
        // The SVG is well-formed XML with one polyline per phase (plus the reduction line).
        let parser = try #require(XMLParser(contentsOf: URL(fileURLWithPath: svg)))
        let counter = ElementCounter()
        parser.delegate = counter
        #expect(parser.parse(), "the SVG is not well-formed XML")
        #expect(counter.counts["polyline.phase"] == 2)
        #expect(counter.counts["svg"] == 1)
        let text = try CLITests.ovl(["sweep", "Samples/bin/sortcb", "--profile", "Samples/bin/sortcb.id.trace", "--gammas", "0,5"])
        #expect(text.status == 0)
        #expect(text.out.split(separator: "\n").filter { $0.hasPrefix("   0 ") || $0.hasPrefix("   5 ") }.count == 2)
    }

    /// `ovl record` finds qemu-x86_64 on PATH, as this test does.
    @Test(Tools.needed("qemu-x86_64"))
    func recordPassesThroughOutputAndStatus() throws {
        let dir = CLITests.tempDir()
        let trace = dir + "/t.trace"
        let r = try CLITests.ovl(["record", "-o", trace, "--", "Samples/bin/crc", "4", "deadbeef"])
        let expected = try String(contentsOfFile: CLITests.samples + "/crc.badsum.out", encoding: .utf8)
        #expect(r.out == expected)
        #expect(r.status == 3)
        #expect(FileManager.default.fileExists(atPath: trace))
        // And the trace is accepted by analyze.
        let a = try CLITests.ovl(["analyze", "Samples/bin/crc", "--profile", trace])
        #expect(a.status == 0, "\(a.err)")
    }

    @Test func profileFromStandardInput() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: CLITests.samples + "/crc.small.trace"))
        let viaStdin = try CLITests.ovl(["analyze", "Samples/bin/crc", "--profile", "-", "--json"], stdin: data)
        let direct = try CLITests.ovl(["analyze", "Samples/bin/crc", "--profile", "Samples/bin/crc.small.trace", "--json"])
        #expect(viaStdin.status == 0, "\(viaStdin.err)")
        func loads(_ s: String) throws -> Int? { (try JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String: Any])?["loads"] as? Int }
        #expect(try loads(viaStdin.out) == loads(direct.out))
    }

    /// Bad input: one line naming the file and the problem, a non-zero exit, no output.
    @Test func badInputGivesOneClearMessage() throws {
        let dir = CLITests.tempDir()
        try "gama = 4\n".write(toFile: dir + "/typo.toml", atomically: true, encoding: .utf8)
        try "gamma = -3\n".write(toFile: dir + "/neg.toml", atomically: true, encoding: .utf8)
        try Data([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]).write(to: URL(fileURLWithPath: dir + "/trunc"))
        let cases: [([String], String)] = [
            (["analyze", dir + "/trunc"], "truncated"),
            (["analyze", "Samples/README.md"], "not an ELF file"),
            (["analyze", "Samples/bin/crc", "--profile", "Samples/bin/interp.fib.trace"], "differs from"),
            (["analyze", "Samples/bin/crc", "--gamma", "-1"], "gamma must be"),
            (["analyze", "Samples/bin/crc", "--buffer", "0"], "buffer size must be a positive"),
            (["analyze", "Samples/bin/crc", "--config", dir + "/typo.toml"], "unknown key 'gama'"),
            (["analyze", "Samples/bin/crc", "--config", dir + "/neg.toml"], "gamma must be"),
            (["analyze", "Samples/bin/crc", "--config", dir + "/none.toml"], "no such file"),
            (["sweep", "Samples/bin/crc", "--gammas", "1,x"], "--gammas"),
        ]
        for (args, expected) in cases {
            let r = try CLITests.ovl(args)
            #expect(r.status != 0, "\(args)")
            #expect(r.out.isEmpty, "\(args) printed: \(r.out)")
            let lines = r.err.split(separator: "\n")
            #expect(lines.count == 1, "\(args): \(r.err)")
            #expect(r.err.contains(expected), "\(args): \(r.err)")
        }
        // No partial output file when the run fails.
        let svg = dir + "/out.svg"
        let r = try CLITests.ovl(["sweep", "Samples/bin/crc", "--profile", "Samples/bin/interp.fib.trace", "--svg", svg])
        #expect(r.status != 0)
        #expect(!FileManager.default.fileExists(atPath: svg))
        // Never overwrite an input.
        let copy = dir + "/crc"
        try FileManager.default.copyItem(atPath: CLITests.samples + "/crc", toPath: copy)
        let clobber = try CLITests.ovl(["sweep", copy, "--svg", copy])
        #expect(clobber.status != 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: copy)) == Data(contentsOf: URL(fileURLWithPath: CLITests.samples + "/crc")))
    }
}
