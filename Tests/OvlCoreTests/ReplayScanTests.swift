import OvlTestSupport
import Testing
@testable import OvlCore

/// The replay's scan for the events that enter overlay code (`ovl_replay.h`), in every
/// form this processor runs (`ReplayScan`: one event at a time, and sixteen at once with
/// AVX-512 where the processor has it), against its definition written out here, and the
/// replays built on it against `LoadRuleOracle`, which shares no code with either.
@Suite struct ReplayScanTests {
    /// The scans this machine runs (a scan it lacks would run as `scalar` and test nothing new).
    static let scans = ReplayScan.allCases.filter(\.isAvailable)

    /// The definition: an event enters when its chain's cluster is not resident (>= 0)
    /// and differs from the last non-resident cluster entered before it.
    static func entries(_ seq: [Int32], map: [Int32], last l0: Int32) -> (entries: [Int32], last: Int32) {
        var last = l0
        var out: [Int32] = []
        for chain in seq {
            let cluster = map[Int(chain)]
            if cluster < 0 { continue }
            if cluster != last { out.append(chain) }
            last = cluster
        }
        return (out, last)
    }

    /// A random map and a sequence drawn from `kinds` of stretches, each a shape the
    /// sixteen-lane scan handles in its own way: a block all resident, one cluster again
    /// and again (nothing enters), two clusters in turn (every event enters), resident
    /// events between entries, and plain random chains.
    static func sample(_ rng: inout SplitMix, length: Int, chains: Int, clusters: Int) -> (seq: [Int32], map: [Int32]) {
        var map = (0..<chains).map { _ in rng.next() % 4 == 0 ? Int32(-1) : Int32(rng.next() % UInt64(clusters)) }
        map[0] = -1
        if chains > 1 { map[1] = 0 }
        let resident = map.indices.filter { map[$0] < 0 }.map { Int32($0) }
        let cold = map.indices.filter { map[$0] >= 0 }.map { Int32($0) }
        func any(_ xs: [Int32]) -> Int32 { xs.isEmpty ? 0 : xs[Int(rng.next() % UInt64(xs.count))] }
        var seq: [Int32] = []
        while seq.count < length {
            let run = 1 + Int(rng.next() % 40)
            switch rng.next() % 5 {
            case 0: for _ in 0..<run { seq.append(any(resident)) }
            case 1: let c = any(cold); for _ in 0..<run { seq.append(c) }
            case 2: let a = any(cold), b = any(cold); for i in 0..<run { seq.append(i % 2 == 0 ? a : b) }
            case 3: for i in 0..<run { seq.append(i % 3 == 0 ? any(cold) : any(resident)) }
            default: for _ in 0..<run { seq.append(Int32(rng.next() % UInt64(chains))) }
            }
        }
        return (Array(seq.prefix(length)), map)
    }

    /// Lengths around the sixteen-event blocks and long ones of many blocks, cluster numbers
    /// small and large, every starting cluster (none, resident-like -1, one in the map,
    /// one not): the entries and the last cluster equal the definition, in two-byte and
    /// four-byte chains, in every scan.
    @Test func entriesEqualTheirDefinition() {
        var rng = SplitMix(seed: 0x5ca9)
        let lengths = Array(0...40) + [63, 64, 65, 255, 256, 257, 1000, CostModel.scanChunk - 1, CostModel.scanChunk + 17]
        var checked = 0, entered = 0
        for (round, length) in lengths.enumerated() {
            let chains = 2 + Int(rng.next() % 300)
            let clusters = round % 3 == 0 ? 3 : 1 + Int(rng.next() % 100_000)
            let (seq, map) = ReplayScanTests.sample(&rng, length: length, chains: chains, clusters: clusters)
            for start in [Int32(-1), 0, map.first { $0 >= 0 } ?? 0, Int32(clusters + 5)] {
                let expected = ReplayScanTests.entries(seq, map: map, last: start)
                for scan in ReplayScanTests.scans {
                    var last = start
                    let wide = CostModel.scanEntries(seq, map: map, last: &last, scan: scan)
                    #expect(wide == expected.entries, "\(scan), \(length) events, start \(start): four-byte chains")
                    #expect(last == expected.last, "\(scan), \(length) events: the last cluster")
                    var lastNarrow = start
                    let narrow = CostModel.scanEntries(seq.map { UInt16($0) }, map: map, last: &lastNarrow, scan: scan)
                    #expect(narrow == expected.entries, "\(scan), \(length) events, start \(start): two-byte chains")
                    #expect(lastNarrow == expected.last)
                    checked += 1
                }
                entered += expected.entries.count
            }
        }
        #expect(checked >= lengths.count * 4)
        #expect(entered > 10_000, "the samples enter clusters often enough to matter")
    }

    /// Long random traces through the whole replay, each scan, one to four buffers, cut
    /// into stretches or not: loads per cluster and per chain equal the oracle's.
    @Test(arguments: [1, 2, 4])
    func everyScanAgreesWithTheOracle(buffers: Int) {
        var rng = SplitMix(seed: 0xa11 &+ UInt64(buffers))
        for round in 0..<6 {
            let clusters = 2 + Int(rng.next() % 60)
            let chains = 50 + Int(rng.next() % 3000)
            let (seq, map) = ReplayScanTests.sample(&rng, length: 20_000 + Int(rng.next() % 60_000), chains: chains, clusters: clusters)
            let expected = LoadRuleOracle.loads(seq, chainCluster: map, clusters: clusters, buffers: buffers)
            #expect(expected.byCluster.reduce(0, +) > 1000)
            for scan in ReplayScanTests.scans {
                for parts in [1, 3] {
                    #expect(CostModel.replay(seq, chainCluster: map, clusters: clusters, buffers: buffers, parts: parts, scan: scan) == expected.byCluster,
                            "round \(round), \(scan), \(parts) stretches")
                    #expect(CostModel.replayByChain(seq, chainCluster: map, chains: chains, buffers: buffers, parts: parts, scan: scan) == expected.byChain,
                            "round \(round), \(scan), \(parts) stretches, per chain")
                    let narrow = seq.map { UInt16($0) }
                    #expect(CostModel.replay(narrow, chainCluster: map, buffers: buffers, slots: clusters, parts: parts, byChain: false, scan: scan)
                            == expected.byCluster, "round \(round), \(scan), two-byte chains")
                }
            }
        }
    }

    /// Several traces replayed at once (the explorer's analysis, `ovl analyze`): their
    /// events cut into stretches that span the end of one trace and the start of the
    /// next, a trace shorter than a stretch, an empty one; each trace's loads equal the
    /// oracle's for that trace alone, from empty buffers.
    @Test(arguments: [1, 2, 3])
    func severalTracesAtOnceEqualEachAlone(buffers: Int) {
        var rng = SplitMix(seed: 0x7ace &+ UInt64(buffers))
        let clusters = 17, chains = 400
        let (a, map) = ReplayScanTests.sample(&rng, length: 30_000, chains: chains, clusters: clusters)
        let b = ReplayScanTests.sample(&rng, length: 25, chains: chains, clusters: clusters).seq
        let c = ReplayScanTests.sample(&rng, length: 9_000, chains: chains, clusters: clusters).seq
        let traces = [a, b, [], c]
        let expected = traces.map { LoadRuleOracle.loads($0, chainCluster: map, clusters: clusters, buffers: buffers) }
        for scan in ReplayScanTests.scans {
            for parts in [1, 2, 3, 7, 40] {
                let got = CostModel.replay(traces, chainCluster: map, buffers: buffers, slots: clusters, parts: parts, byChain: false, scan: scan)
                #expect(got == expected.map(\.byCluster), "\(scan), \(parts) stretches")
                let narrow = CostModel.replay(traces.map { $0.map { UInt16($0) } }, chainCluster: map, buffers: buffers, slots: chains,
                                              parts: parts, byChain: true, scan: scan)
                #expect(narrow == expected.map(\.byChain), "\(scan), \(parts) stretches, per chain, two-byte chains")
            }
        }
        #expect(expected[1].byCluster.reduce(0, +) > 0, "the short trace loads something")
    }
}
