import Foundation
import OvlTestSupport
import Testing
@testable import OvlCore

@Suite struct ProfileTests {
    static func session(_ name: String) throws -> (Program, Chains) {
        let p = try Program.load(path: Fixture.samples + "/" + name)
        return (p, Chains(program: p, granularity: .block))
    }

    /// A real QEMU log and the ovl trace recorded from the same run hold the same
    /// addresses, and resolve to the same profile.
    @Test(Tools.needed("qemu-x86_64"))
    func qemuLogAndOvlTraceAgree() throws {
        let dir = Fixture.tempDir()
        let exe = Fixture.samples + "/interp"
        let log = dir + "/exec.log"
        let r = try Fixture.run(try Tools.path("qemu-x86_64"), ["-d", "exec,nochain", "-D", log, exe, "fib", "12"])
        #expect(r.status == 0 || r.status == 3)
        let trace = dir + "/t.trace"
        let rec = try Recorder.record(output: trace, program: exe, arguments: ["fib", "12"])
        #expect(rec.exitStatus == r.status)

        let (p, chains) = try ProfileTests.session("interp")
        let fromLog = try ProfileLoader.load(path: log, program: p, chains: chains, showProgress: false)
        let fromTrace = try ProfileLoader.load(path: trace, program: p, chains: chains, showProgress: false)
        #expect(fromLog.format == .qemuLog)
        #expect(fromTrace.format == .ovlTrace)
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").filter { $0.hasPrefix("Trace ") }.count
        #expect(fromLog.stats.addresses == UInt64(lines))
        #expect(fromTrace.stats.addresses == UInt64(lines))
        #expect(fromLog.blockCounts == fromTrace.blockCounts)
        #expect(fromLog.chainRuns == fromTrace.chainRuns)
        #expect(fromLog.stats.misaligned == 0)
        #expect(fromLog.stats.matched + fromLog.stats.repIterations + fromLog.stats.foreign == fromLog.stats.addresses)
    }

    /// Feeding a log in chunks of any size gives the same addresses as one piece.
    @Test func logParserHandlesLinesCutAcrossChunks() {
        var text = "QEMU says hello\n"
        var expected: [UInt64] = []
        var rng = SplitMix(seed: 3)
        for i in 0..<500 {
            let pc = 0x401000 + rng.next() % 0x5000
            expected.append(pc)
            // Host pointers of two widths, upper- and lower-case hex.
            let host = i % 7 == 0 ? "0x7f98840\(i)" : "0x55d1a2"
            let pcText = i % 5 == 0 ? String(format: "%016llX", pc) : String(format: "%016llx", pc)
            text += "Trace 0: \(host) [0000000000000000/\(pcText)/1040c0b3/00000200] fn\(i)\n"
        }
        text += "Trace 0: 0x7f98 [0000000000000000/0000000000401234/1040c0b3/00000200] no newline at end"
        expected.append(0x401234)
        let bytes = Array(text.utf8)
        for chunk in [1, 2, 7, 64, 1000, bytes.count] {
            var parser = QEMULogParser()
            var got: [UInt64] = []
            var i = 0
            while i < bytes.count {
                let n = min(chunk, bytes.count - i)
                bytes[i..<(i + n)].withUnsafeBytes { parser.feed($0) { got.append($0) } }
                i += n
            }
            parser.finish { got.append($0) }
            #expect(got == expected, "chunk \(chunk)")
            #expect(parser.otherLines == 1)
            // The batch form (with its fixed-offset fast path) reads the same.
            var batchParser = QEMULogParser()
            var batch: [UInt64] = []
            i = 0
            while i < bytes.count {
                let n = min(chunk, bytes.count - i)
                bytes[i..<(i + n)].withUnsafeBytes { batchParser.feed($0, into: &batch) }
                i += n
            }
            batchParser.finish { batch.append($0) }
            #expect(batch == expected, "batch, chunk \(chunk)")
        }
    }

    /// A translation block that spans blocks joined by fall-through enters each of them.
    @Test func translationBlocksSpanningBlocksAreWalked() throws {
        let (p, chains) = try ProfileTests.session("crc")
        // Find a block that ends without a transfer and runs on into the next.
        let b = try #require((0..<(p.blockCount - 1)).first { p.blockKind[$0] == .fallThrough && p.blockContinues[$0] && p.blockKind[$0 + 1] == .ret })
        let profile = Profile(source: "t", format: .qemuLog, hasSequence: true, blockCount: p.blockCount)
        var builder = BlockSequenceBuilder(program: p, chains: chains, profile: profile)
        builder.add(p.blockStart[b])
        // The next translation block starts elsewhere: the walk must have entered b + 1.
        let elsewhere = p.blockStart[(b + 10) % p.blockCount]
        builder.add(elsewhere)
        builder.finish()
        #expect(profile.blockCounts[b] == 1)
        #expect(profile.blockCounts[b + 1] == 1)
    }

    @Test func profileOfAnotherBinaryIsRejected() throws {
        let (p, chains) = try ProfileTests.session("crc")
        let other = Fixture.traces(of: Fixture.samples + "/dijkstra")[0]
        do {
            _ = try ProfileLoader.load(path: other, program: p, chains: chains, showProgress: false)
            Issue.record("accepted a trace of another binary")
        } catch let e as OvlError {
            #expect(e.description.contains("differs from"))
        }
    }

    /// `Session.open` starts reading the first trace before the image is decoded: the
    /// check against the image's code happens on the reader thread, and its refusal must
    /// reach the caller as the same message, naming the trace; so must a trace cut short.
    @Test func profileOfAnotherBinaryIsRejectedWhenReadEarly() throws {
        let image = Fixture.samples + "/crc"
        let other = Fixture.traces(of: Fixture.samples + "/dijkstra")[0]
        do {
            _ = try Session.open(image: image, profiles: [other], config: Config(), showProgress: false)
            Issue.record("accepted a trace of another binary")
        } catch let e as OvlError {
            #expect(e.description.contains("differs from") && e.description.contains(other))
        }
        let own = Fixture.traces(of: image)[0]
        let bytes = try Data(contentsOf: URL(fileURLWithPath: own))
        let cut = Fixture.tempDir() + "/cut.trace"
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: cut))
        do {
            _ = try Session.open(image: image, profiles: [cut, own], config: Config(), showProgress: false)
            Issue.record("accepted a truncated trace")
        } catch let e as OvlError {
            #expect(e.description.contains("truncated") && e.description.contains(cut))
        }
        // Read early or not, the same profile.
        let early = try Session.open(image: image, profiles: [own], config: Config(), showProgress: false)
        let (p, chains) = try ProfileTests.session("crc")
        let late = try ProfileLoader.load(path: own, program: p, chains: chains, showProgress: false)
        #expect(early.profiles[0].stats == late.stats && early.profiles[0].chainRuns == late.chainRuns
                && early.profiles[0].blockCounts == late.blockCounts && early.profiles[0].chainEdges == late.chainEdges)
    }

    /// The same as a raw QEMU log: no header to check, so the addresses decide.
    @Test(Tools.needed("qemu-x86_64"))
    func qemuLogOfAnotherBinaryIsRejected() throws {
        let (p, chains) = try ProfileTests.session("crc")
        let log = Fixture.tempDir() + "/other.log"
        try Fixture.run(try Tools.path("qemu-x86_64"), ["-d", "exec,nochain", "-D", log, Fixture.samples + "/dijkstra", "300", "42", "150"])
        do {
            _ = try ProfileLoader.load(path: log, program: p, chains: chains, showProgress: false)
            Issue.record("accepted a log of another binary")
        } catch let e as OvlError {
            #expect(e.description.contains("does not belong to"))
            #expect(e.description.contains("instruction starts"))
        }
    }

    @Test func garbageAndEmptyProfilesAreRejected() throws {
        let (p, chains) = try ProfileTests.session("crc")
        let dir = Fixture.tempDir()
        try "".write(toFile: dir + "/empty", atomically: true, encoding: .utf8)
        try "just some text\n".write(toFile: dir + "/text", atomically: true, encoding: .utf8)
        let trace = try Data(contentsOf: URL(fileURLWithPath: Fixture.traces(of: Fixture.samples + "/crc")[0]))
        try trace.prefix(trace.count / 2).write(to: URL(fileURLWithPath: dir + "/cut.trace"))
        // Cut after the addresses: in the table of address pairs, or in the end mark.
        try trace.prefix(trace.count - 12).write(to: URL(fileURLWithPath: dir + "/cut-trailer.trace"))
        try trace.prefix(trace.count - 3).write(to: URL(fileURLWithPath: dir + "/cut-end.trace"))
        var badEnd = trace
        badEnd[badEnd.count - 1] ^= 0xff
        try badEnd.write(to: URL(fileURLWithPath: dir + "/bad-end.trace"))
        for (name, expected) in [("empty", "is empty"), ("text", "not a profile"), ("cut.trace", "truncated"), ("cut-trailer.trace", "truncated"),
                                 ("cut-end.trace", "truncated"), ("bad-end.trace", "end mark"), ("missing", "no such file")] {
            do {
                _ = try ProfileLoader.load(path: dir + "/" + name, program: p, chains: chains, showProgress: false)
                Issue.record("\(name) accepted")
            } catch let e as OvlError {
                #expect(e.description.contains(expected), "\(name): \(e)")
                #expect(e.description.hasPrefix(dir + "/" + name))
            }
        }
    }

    /// A BOLT .fdata written by hand: branches by symbol and offset.
    @Test func readsBoltFdata() throws {
        let (p, chains) = try ProfileTests.session("crc")
        let main = p.functions[try #require(p.functionIndex(named: "main"))]
        let mainBlocks = main.blocks
        // A call from main to another function, and a jump inside main.
        let callBlock = try #require(mainBlocks.first { p.blockKind[$0] == .call && p.blockTarget[$0] >= 0 })
        let callInsn = try #require(p.instructions(ofBlock: callBlock).last)
        let callee = p.functions[Int(p.blockFunction[Int(p.blockTarget[callBlock])])]
        let fdata = """
        1 main \(String(callInsn.address - main.address, radix: 16)) 1 \(callee.name) 0 0 40
        1 main \(String(callInsn.address - main.address, radix: 16)) 1 \(callee.name) 0 1 2
        1 no_such_function 10 1 main 0 0 5

        """
        let path = Fixture.tempDir() + "/prof.fdata"
        try fdata.write(toFile: path, atomically: true, encoding: .utf8)
        let prof = try ProfileLoader.load(path: path, program: p, chains: chains, showProgress: false)
        #expect(prof.format == .fdata)
        #expect(!prof.hasSequence)
        #expect(prof.unresolvedRecords.count == 1)
        let from = chains.blockChain[callBlock], to = chains.blockChain[Int(p.blockTarget[callBlock])]
        #expect(prof.chainEdges[Profile.edgeKey(from, to)] == 42)
        #expect(prof.blockCounts[Int(p.blockTarget[callBlock])] == 42)
    }

    @Test func standardInputAndNamedPipesWork() throws {
        let (p, chains) = try ProfileTests.session("crc")
        let trace = Fixture.traces(of: Fixture.samples + "/crc")[0]
        let direct = try ProfileLoader.load(path: trace, program: p, chains: chains, showProgress: false)
        let fifo = Fixture.tempDir() + "/pipe"
        #expect(mkfifo(fifo, 0o600) == 0)
        let data = try Data(contentsOf: URL(fileURLWithPath: trace))
        let writer = Thread {
            let h = FileHandle(forWritingAtPath: fifo)!
            h.write(data)
            h.closeFile()
        }
        writer.start()
        let viaPipe = try ProfileLoader.load(path: fifo, program: p, chains: chains, showProgress: false)
        #expect(viaPipe.blockCounts == direct.blockCounts)
        #expect(viaPipe.chainRuns == direct.chainRuns)
    }
}
