import Foundation
import OvlTestSupport
import Testing
@testable import OvlCore

/// The profile reader's block-sequence builder against the one it replaced
/// (`ReferenceBlockSequenceBuilder`): fed the same addresses, both must give the same
/// profile, field for field, on every committed sample trace (musl and glibc) and on the
/// Linux extract's boot and workload traces. And the address table the fast builder looks
/// addresses up in must classify every address of the executable range as the reference
/// classification (binary search over blocks and sections) does.
@Suite struct ProfileEquivalenceTests {
    /// Both builders over the addresses of one trace.
    static func both(_ trace: String, program: Program, chains: Chains) throws -> (Profile, Profile) {
        let fast = Profile(source: trace, format: .ovlTrace, hasSequence: true, blockCount: program.blockCount)
        let reference = Profile(source: trace, format: .ovlTrace, hasSequence: true, blockCount: program.blockCount)
        var f = BlockSequenceBuilder(program: program, chains: chains, profile: fast)
        var r = ReferenceBlockSequenceBuilder(program: program, chains: chains, profile: reference)
        let stream = try ByteStream(path: trace)
        try TraceFile.readBatches(stream, header: { _ in }) { batch in
            f.add(batch)
            r.add(batch)
        }
        f.finish()
        r.finish()
        return (fast, reference)
    }

    /// A profile's segments as runs of one repeated segment (`forEachSegmentRun`).
    static func runs(_ p: Profile) -> [[Int]] {
        var out: [[Int]] = []
        p.forEachSegmentRun { f, l, r in out.append([Int(f), Int(l), r]) }
        return out
    }

    static func expectSame(_ x: Profile, _ y: Profile, _ what: String) {
        #expect(x.stats == y.stats, "\(what): statistics")
        #expect(x.blockCounts == y.blockCounts, "\(what): block counts")
        #expect(x.chainEdges == y.chainEdges, "\(what): chain transfers")
        #expect(x.chainRuns == y.chainRuns, "\(what): chain runs")
        #expect(x.outsideEntries == y.outsideEntries, "\(what): entries from outside")
        #expect(x.segmentFirst == y.segmentFirst, "\(what): segment starts")
        #expect(x.segmentLast == y.segmentLast, "\(what): segment ends")
        // Repeated segments folded alike (the reference folds them only when it encodes
        // its whole list at the end); loops the fast builder counts stand expanded here.
        #expect(runs(x) == runs(y), "\(what): segments as runs of repeats")
        #expect(x.chainRunCount == y.chainRunCount)
        // What the cost model replays, read from the runs as kept.
        #expect(CostModel.compact(x) == CostModel.compact(y), "\(what): compacted chain sequence")
        #expect(CostModel.compactNarrow(x) == CostModel.compactNarrow(y), "\(what): compacted chain sequence, two bytes")
    }

    /// Every address of the table's range, and a margin either side, classified both ways.
    static func expectTableAgrees(_ program: Program, _ what: String) throws {
        let table = try #require(AddressTable(program: program), "\(what): no address table")
        let classifier = AddressClassifier(program: program)
        let reps = program.repStringAddresses
        var mismatches = 0
        var first = ""
        let lo = table.base >= 64 ? table.base - 64 : 0
        for pc in lo..<(table.base + UInt64(table.span) + 64) {
            var expected = classifier.classify(pc)
            if expected >= 0 && program.blockStart[Int(expected)] == pc { expected |= AddressTable.blockStart }
            if reps.contains(pc) { expected += expected >= 0 ? AddressTable.repString : AddressTable.repClass }
            let got = pc >= table.base && pc - table.base < UInt64(table.span) ? table.classes[Int(pc - table.base)]
                : (reps.contains(pc) ? AddressTable.repClass : 0) + BlockSequenceBuilder.classForeign
            if got != expected {
                if mismatches == 0 { first = "0x\(String(pc, radix: 16)): table \(got), reference \(expected)" }
                mismatches += 1
            }
        }
        #expect(mismatches == 0, "\(what): \(mismatches) addresses classified differently, first \(first)")
        // The range covers at least every block.
        #expect(table.base <= program.blockStart.first! && table.base + UInt64(table.span) >= program.blockStart.last! + UInt64(program.blockSize.last!))
    }

    @Test(arguments: Fixture.sampleBinaries.map { ($0 as NSString).lastPathComponent })
    func sampleTracesGiveTheSameProfile(name: String) throws {
        let program = try Program.load(path: Fixture.samples + "/" + name)
        let chains = Chains(program: program, granularity: .block)
        let traces = Fixture.traces(of: Fixture.samples + "/" + name)
        #expect(!traces.isEmpty, "\(name) has committed traces")
        for trace in traces {
            let (fast, reference) = try ProfileEquivalenceTests.both(trace, program: program, chains: chains)
            #expect(fast.stats.matched > 0)
            ProfileEquivalenceTests.expectSame(fast, reference, (trace as NSString).lastPathComponent)
            // As `ovl analyze` reads it: two threads, runs outside collapsed and runs of
            // one address folded.
            let loaded = try ProfileLoader.load(path: trace, program: program, chains: chains, showProgress: false)
            ProfileEquivalenceTests.expectSame(loaded, reference, "\((trace as NSString).lastPathComponent), two stages")
        }
        try ProfileEquivalenceTests.expectTableAgrees(program, name)
    }

    /// The interpreter sample, its chains by block, and its address table.
    static func interp() throws -> (Program, Chains, AddressTable) {
        let program = try Program.load(path: Fixture.samples + "/interp")
        return (program, Chains(program: program, granularity: .block), try #require(AddressTable(program: program)))
    }

    /// A foreign address stream (random addresses in and around the image, repeated
    /// addresses as a rep-string iteration would give) through both builders.
    @Test func randomAddressesGiveTheSameProfile() throws {
        let (program, chains, table) = try ProfileEquivalenceTests.interp()
        var rng = SplitMix(seed: 20261202)
        var pcs: [UInt64] = []
        let starts = program.instructionStarts
        for _ in 0..<200_000 {
            switch rng.next() % 8 {
            case 0: pcs.append(rng.next())                                                      // anywhere
            case 1: pcs.append(table.base &- 4096 &+ rng.next() % UInt64(table.span + 8192))   // around the range
            case 2: pcs.append(pcs.last ?? 0)                                                   // repeated
            case 3: pcs.append(program.repStringAddresses.randomElement(using: &rng) ?? 0)
            default: pcs.append(starts[Int(rng.next() % UInt64(starts.count))])                 // an instruction
            }
        }
        let fast = Profile(source: "random", format: .ovlTrace, hasSequence: true, blockCount: program.blockCount)
        let reference = Profile(source: "random", format: .ovlTrace, hasSequence: true, blockCount: program.blockCount)
        var f = BlockSequenceBuilder(program: program, chains: chains, profile: fast)
        var r = ReferenceBlockSequenceBuilder(program: program, chains: chains, profile: reference)
        pcs.withUnsafeBufferPointer { f.add($0); r.add($0) }
        f.finish()
        r.finish()
        #expect(fast.stats.foreign > 0 && fast.stats.misaligned > 0 && fast.stats.matched > 0)
        ProfileEquivalenceTests.expectSame(fast, reference, "random addresses")
    }

    /// The loader reads on two threads, and the reader leaves the tail of each batch for
    /// the resolver to classify, in a share that moves with the queue. A trace of random
    /// addresses (rep-string repeats among them, so some fall on the split) read that way
    /// must give the profile the reference builder makes of the same addresses. The
    /// trace reader collapses runs of addresses outside the image, and counts them.
    /// Segments are kept one entry a segment where they can: worked by hand, then random
    /// first and last blocks through the encoding and back.
    @Test func segmentsEncodeAndDecode() {
        let first: [Int32] = [3, -1, 5, 0, 7], last: [Int32] = [3, -1, 9, 0, 8]
        let p = Profile(name: "segments", chainRuns: [], blockCount: 10, chainEdges: [:])
        p.segments = Profile.encodeSegments(first: first, last: last)
        #expect(p.segments == [3, -1, -7, 9, 0, -9, 8])
        #expect(p.segmentFirst == first && p.segmentLast == last)
        // Repeats of the segment just before: one entry counting them, worked by hand.
        let rf: [Int32] = [3, 3, 3, -1, 5, 5, 0, 7, 3], rl: [Int32] = [3, 3, 3, -1, 9, 9, 0, 8, 3]
        p.segments = Profile.encodeSegments(first: rf, last: rl)
        let mark = Profile.repeatMark
        #expect(p.segments == [3, mark | 2, -1, -7, 9, mark | 1, 0, -9, 8, 3])
        #expect(p.segmentFirst == rf && p.segmentLast == rl)
        var runs: [(Int32, Int32, Int)] = []
        p.forEachSegmentRun { f, l, k in runs.append((f, l, k)) }
        #expect(runs.map(\.2) == [2, 0, 1, 0, 0, 0] && runs.map(\.0) == [3, -1, 5, 0, 7, 3])
        var rng = SplitMix(seed: 7)
        for _ in 0..<20 {
            var f: [Int32] = [], l: [Int32] = []
            for _ in 0..<Int(rng.next() % 200) {
                switch rng.next() % 5 {
                case 0: f.append(-1); l.append(-1)
                case 1: let b = Int32(rng.next() % 1000); f.append(b); l.append(b + 1 + Int32(rng.next() % 5))
                case 2 where !f.isEmpty:
                    for _ in 0..<Int(rng.next() % 4) { f.append(f.last!); l.append(l.last!) }
                default: let b = Int32(rng.next() % 1000); f.append(b); l.append(b)
                }
            }
            p.segments = Profile.encodeSegments(first: f, last: l)
            #expect(p.segmentFirst == f && p.segmentLast == l)
            // One or two entries a run of equal segments, and one more when it repeats.
            var expected = 0
            for i in f.indices where i == 0 || f[i] != f[i - 1] || l[i] != l[i - 1] {
                expected += f[i] == l[i] ? 1 : 2
                if i + 1 < f.count && f[i + 1] == f[i] && l[i + 1] == l[i] { expected += 1 }
            }
            #expect(p.segments.count == expected)
        }
    }

    @Test func theTwoStageLoaderGivesTheSameProfile() throws {
        let (program, chains, table) = try ProfileEquivalenceTests.interp()
        let starts = program.instructionStarts
        var rng = SplitMix(seed: 20261203)
        var pcs: [UInt64] = []
        let reps = Array(program.repStringAddresses).sorted()
        #expect(!reps.isEmpty)
        // Inside the image but outside the address table's range: its data.
        let data = program.elf.sections.filter { $0.isAllocated && !$0.isExecutable && $0.size > 0 }
        #expect(data.contains { $0.address >= table.base + UInt64(table.span) + 4096 })
        while pcs.count < 600_000 {
            switch rng.next() % 32 {
            case 0 where rng.next() % 2 == 0:
                let s = data[Int(rng.next() % UInt64(data.count))]
                pcs.append(s.address + rng.next() % s.size)
            case 0: pcs.append(table.base &- 4096 &+ rng.next() % UInt64(table.span + 8192))   // around the range
            case 1...12:
                // A rep-string instruction iterating: more than half the addresses, so
                // a batch's split falls inside such a run more often than not.
                let pc = reps[Int(rng.next() % UInt64(reps.count))]
                for _ in 0..<(2 + rng.next() % 6) { pcs.append(pc) }
            case 13...15: pcs.append(pcs.last ?? starts[0])                                     // repeated
            case 16, 17:
                // A run far outside the image (user space, firmware): one leave for it.
                for _ in 0..<(1 + rng.next() % 40) { pcs.append(rng.next() >> 20) }
            case 18:
                // One address many times in a row (a block that jumps to itself, a
                // rep-string instruction, a wait loop), which the reader folds: a block's
                // start, an address inside one, a rep-string instruction, an address in
                // the code that starts no instruction, one in the image's data; now and
                // then longer than a batch.
                let pc: UInt64
                var n = rng.next() % 16 == 0 ? 1 + rng.next() % 140_000 : 1 + rng.next() % 300
                switch rng.next() % 6 {
                case 0, 1: pc = program.blockStart[Int(rng.next() % UInt64(program.blockCount))]
                case 2: pc = starts[Int(rng.next() % UInt64(starts.count))]
                case 3: pc = reps[Int(rng.next() % UInt64(reps.count))]
                case 4:
                    // Short: a profile mostly of such addresses is another binary's.
                    pc = table.base + rng.next() % UInt64(table.span)
                    n = 1 + rng.next() % 3
                default:
                    let s = data[Int(rng.next() % UInt64(data.count))]
                    pc = s.address + rng.next() % s.size
                }
                for _ in 0..<n { pcs.append(pc) }
            case 19, 20:
                // A loop of two to four translation blocks, which the reader folds too:
                // mostly block starts (now and then blocks next to each other, which
                // make one segment), sometimes an address inside a block, a rep-string
                // instruction, or one outside the code; some longer than a batch, most
                // ending inside a period.
                let p = 2 + Int(rng.next() % 3)
                var pattern: [UInt64] = []
                let b0 = Int(rng.next() % UInt64(program.blockCount - 4))
                for j in 0..<p {
                    switch rng.next() % 10 {
                    case 0: pattern.append(starts[Int(rng.next() % UInt64(starts.count))])
                    case 1: pattern.append(reps[Int(rng.next() % UInt64(reps.count))])
                    case 2: pattern.append(rng.next() >> 20)
                    case 3, 4: pattern.append(program.blockStart[b0 + j])
                    default: pattern.append(program.blockStart[Int(rng.next() % UInt64(program.blockCount))])
                    }
                }
                let n = rng.next() % 16 == 0 ? 1 + rng.next() % 150_000 : 1 + rng.next() % 2_000
                for j in 0..<Int(n) { pcs.append(pattern[j % p]) }
            default: pcs.append(starts[Int(rng.next() % UInt64(starts.count))])                 // an instruction
            }
        }
        // A run outside longer than the reader's batch of 65,536 (a kernel's
        // decompressor): batches that hold nothing but collapsed addresses.
        var long: [UInt64] = []
        for _ in 0..<140_000 { long.append(rng.next() >> 20) }
        pcs.insert(contentsOf: long, at: 300_000)
        let dir = NSTemporaryDirectory() + "ovl-two-stage-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/random.trace"
        let writer = try TraceFile.Writer(path: path, codeHash: TraceFile.codeHash(of: program.elf), imageName: "interp", commandLine: "random")
        pcs.withUnsafeBufferPointer { writer.append(contentsOf: $0) }
        try writer.close()

        let reference = Profile(source: path, format: .ovlTrace, hasSequence: true, blockCount: program.blockCount)
        var r = ReferenceBlockSequenceBuilder(program: program, chains: chains, profile: reference)
        pcs.withUnsafeBufferPointer { r.add($0) }
        r.finish()
        let loaded = try ProfileLoader.load(path: path, program: program, chains: chains, showProgress: false)
        #expect(loaded.stats.repIterations > 0 && loaded.stats.misaligned > 0 && loaded.stats.foreign > 100_000)
        #expect(pcs.count > 700_000, "long runs of one address")
        ProfileEquivalenceTests.expectSame(loaded, reference, "random addresses, two stages")

        // Reading started before the program is decoded (`Session.open`): the batches
        // wait unclassified, here up to 256 KB of them (the reader blocks on the budget,
        // then the backlog drains before the share settles), and the program comes later.
        let early = try #require(try ProfileLoader.startReading(path: path, elf: program.elf, showProgress: false, earlyBudget: 256 << 10))
        Thread.sleep(forTimeInterval: 0.3)
        let late = try ProfileLoader.load(early, program: program, chains: chains)
        ProfileEquivalenceTests.expectSame(late, reference, "random addresses, reading started early")
        // With room for all of it, the reader has queued the whole trace unclassified by
        // the time the program comes, and classifies from the last batch back while the
        // resolver takes them from the first.
        let whole = try #require(try ProfileLoader.startReading(path: path, elf: program.elf, showProgress: false))
        Thread.sleep(forTimeInterval: 0.3)
        let all = try ProfileLoader.load(whole, program: program, chains: chains)
        ProfileEquivalenceTests.expectSame(all, reference, "random addresses, all read before the program came")
        // A resolver slower than the reader: the queue fills, and the reader, blocked,
        // classifies the share left to the resolver of the newest queued batches, and
        // after its last batch of every batch still queued.
        let slow = try #require(try ProfileLoader.startReading(path: path, elf: program.elf, showProgress: false, earlyBudget: 256 << 10))
        Thread.sleep(forTimeInterval: 0.1)
        let slowly = try ProfileLoader.load(slow, program: program, chains: chains, pausePerBatch: 0.05)
        ProfileEquivalenceTests.expectSame(slowly, reference, "random addresses, a slow resolver")
        // A reading that is never resolved stops.
        try #require(try ProfileLoader.startReading(path: path, elf: program.elf, showProgress: false, earlyBudget: 64 << 10)).cancel()
    }

    /// The reader's folding of runs of one address and of loops of two to four
    /// (`TraceFile.repeatRun`), undone by hand, gives back every address of the file:
    /// random addresses with runs of up to 200,000 (batches of nothing but a run), in a
    /// window that holds them all and in one that holds half.
    @Test func foldedRunsGiveBackEveryAddress() throws {
        var rng = SplitMix(seed: 20261205)
        var pcs: [UInt64] = []
        while pcs.count < 900_000 {
            // One address or a loop of two to four, some outside the narrower window.
            let p = rng.next() % 2 == 0 ? 1 : 2 + Int(rng.next() % 3)
            let pattern = (0..<p).map { _ in 0x40_0000 + rng.next() % 0x2_0000 }
            let n = rng.next() % 8 == 0 ? 1 : rng.next() % 50 == 0 ? 1 + rng.next() % 200_000 : 500 + rng.next() % 2_500
            for j in 0..<Int(n) { pcs.append(pattern[j % p]) }
        }
        let dir = NSTemporaryDirectory() + "ovl-folded-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/runs.trace"
        let writer = try TraceFile.Writer(path: path, codeHash: 1, imageName: "runs", commandLine: "")
        pcs.withUnsafeBufferPointer { writer.append(contentsOf: $0) }
        try writer.close()
        for window in [(low: UInt64(0x40_0000), span: UInt64(0x2_0000)), (low: UInt64(0x40_0000), span: UInt64(0x1_0000))] {
            var got: [UInt64] = []
            var folded: UInt64 = 0, collapsed: UInt64 = 0, marks = 0, loopMarks = 0
            try TraceFile.readBatches(try ByteStream(path: path), header: { _ in }, collapsingOutside: window) { batch, counts in
                let c = counts.collapsed, r = counts.repeated
                folded += r
                collapsed += c
                var inBatch: UInt64 = 0
                for (i, v) in batch.enumerated() {
                    if TraceFile.isRepeatRun(v) {
                        let p = TraceFile.repeatPeriod(v), k = TraceFile.repeatCount(v)
                        #expect(i >= p && (1...p).allSatisfy { !TraceFile.isRepeatRun(batch[i - $0]) && batch[i - $0] != TraceFile.collapsedRun },
                                "a run mark follows the addresses it repeats")
                        inBatch += UInt64(k)
                        marks += 1
                        if p > 1 { loopMarks += 1 }
                        let pattern = Array(got.suffix(p))
                        for j in 0..<k { got.append(pattern[j % p]) }
                    } else {
                        got.append(v)
                    }
                }
                #expect(inBatch == r)
            }
            // Outside the window, each run is one `collapsedRun`: compare with the same.
            var expected: [UInt64] = []
            var outside: UInt64 = 0
            for pc in pcs {
                if pc &- window.low < window.span { expected.append(pc) } else {
                    outside += 1
                    if expected.last != TraceFile.collapsedRun { expected.append(TraceFile.collapsedRun) }
                }
            }
            // A collapsed run that spans two batches stands twice: merge such.
            var merged: [UInt64] = []
            for v in got where !(v == TraceFile.collapsedRun && merged.last == TraceFile.collapsedRun) { merged.append(v) }
            #expect(merged == expected, "window \(window)")
            #expect(collapsed == outside)
            #expect(marks > 20 && loopMarks > 3 && folded > 100_000, "runs and loops were folded: \(marks) marks, \(loopMarks) of loops, \(folded) addresses")
        }
    }

    @Test(Tools.needed("xz"))
    func linuxExtractTracesGiveTheSameProfile() throws {
        let image = try LinuxExtractFiles.image()
        let config = try Config.load(path: LinuxExtractFiles.config)
        let program = try Program.load(path: image, options: ProgramOptions(excludedSections: config.excludeSections))
        let chains = Chains(program: program, granularity: config.granularity)
        for trace in LinuxExtractFiles.traces {
            let (fast, reference) = try ProfileEquivalenceTests.both(trace, program: program, chains: chains)
            #expect(fast.stats.matched > 0)
            #expect(fast.stats.excludedSection + fast.stats.foreign > 0, "the kernel's traces leave the analysed code")
            ProfileEquivalenceTests.expectSame(fast, reference, "Linux extract \((trace as NSString).lastPathComponent)")
            let loaded = try ProfileLoader.load(path: trace, program: program, chains: chains, showProgress: false)
            ProfileEquivalenceTests.expectSame(loaded, reference, "Linux extract \((trace as NSString).lastPathComponent), two stages")
        }
        try ProfileEquivalenceTests.expectTableAgrees(program, "Linux extract")
    }
}
