import OvlTestSupport
import Foundation
import Testing
@testable import OvlCore

/// An oracle for the overlay manager's load rules that shares nothing with
/// `Sources/COverlayRules/rules.c`: the model's replay and the manager in rewritten images
/// both compile that file, so `ModelEqualsRealityTests` cannot see a wrong rule. This is the
/// rule written again from its specification (`ovl_rules.h`), as the textbook LRU stack:
///
///  - control entering a chain of an overlay cluster (a call, a jump, or a return through
///    a restore stub: the trace shows a return as the return site's chain being entered)
///    loads the cluster unless a code buffer holds it already;
///  - resident code neither loads nor evicts anything, nor counts as a use;
///  - with N buffers, an empty buffer is filled first, else the buffer whose cluster was
///    entered least recently is reused.
struct LoadRuleOracle {
    let buffers: Int
    /// Clusters in the buffers, the most recently entered first.
    private(set) var recency: [Int32] = []
    init(buffers: Int) { self.buffers = buffers }

    /// Control enters `cluster`; true when it had to be loaded.
    mutating func enter(_ cluster: Int32) -> Bool {
        if let i = recency.firstIndex(of: cluster) {
            recency.remove(at: i)
            recency.insert(cluster, at: 0)
            return false
        }
        if recency.count == buffers { recency.removeLast() }
        recency.insert(cluster, at: 0)
        return true
    }

    /// Loads per cluster and per chain when `chains` run against `chainCluster` (-1 resident).
    static func loads(_ chains: [Int32], chainCluster: [Int32], clusters: Int, buffers: Int) -> (byCluster: [UInt64], byChain: [UInt64]) {
        var oracle = LoadRuleOracle(buffers: buffers)
        var byCluster = [UInt64](repeating: 0, count: clusters)
        var byChain = [UInt64](repeating: 0, count: chainCluster.count)
        for chain in chains {
            let cluster = chainCluster[Int(chain)]
            guard cluster >= 0 else { continue }
            if oracle.enter(cluster) {
                byCluster[Int(cluster)] += 1
                byChain[Int(chain)] += 1
            }
        }
        return (byCluster, byChain)
    }
}

@Suite struct LoadRuleOracleTests {
    /// A hand-written trace: each letter is a chain of the cluster of that name (A is
    /// cluster 0, B cluster 1, …), each `.` a chain of resident code. Returns the chain
    /// sequence (chain i + 1 for cluster i, chain 0 resident) and the chain → cluster map.
    static func trace(_ s: String) -> (chains: [Int32], map: [Int32], clusters: Int) {
        let letters = s.filter { $0.isLetter }.map { Int32($0.asciiValue! - UInt8(ascii: "A")) }
        let clusters = Int((letters.max() ?? -1) + 1)
        let map = [-1] + (0..<Int32(clusters)).map { $0 }
        let chains = s.compactMap { ch -> Int32? in
            if ch == "." { return 0 }
            guard ch.isLetter else { return nil }
            return Int32(ch.asciiValue! - UInt8(ascii: "A")) + 1
        }
        return (chains, map, clusters)
    }

    func replay(_ s: String, buffers: Int) -> [UInt64] {
        let t = LoadRuleOracleTests.trace(s)
        return CostModel.replay(t.chains, chainCluster: t.map, clusters: t.clusters, buffers: buffers)
    }

    func oracle(_ s: String, buffers: Int) -> [UInt64] {
        let t = LoadRuleOracleTests.trace(s)
        return LoadRuleOracle.loads(t.chains, chainCluster: t.map, clusters: t.clusters, buffers: buffers).byCluster
    }

    /// Sequences worked by hand, loads per cluster (A, B, C, …). Both the replay and the
    /// oracle must give the hand-worked answer.
    static let handWorked: [(buffers: Int, trace: String, loads: [UInt64], why: String)] = [
        // One buffer: every change of cluster loads; resident code in between evicts nothing.
        (1, "A B A", [2, 1], "B replaces A; the return into A reloads it"),
        (1, "A . A . A", [1], "a call into resident code leaves A in the buffer"),
        (1, "A . B . A", [2, 1], "A calls B through core; B's return reloads A"),
        (1, "A B C B A", [2, 2, 1], "a call chain two deep and its returns"),
        // Two buffers.
        (2, "A B A B", [1, 1], "both fit"),
        (2, "A B C A", [2, 1, 1], "C evicts A (least recent), A evicts B"),
        (2, "A B A C B", [1, 2, 1], "A was used after B, so C evicts B; then B evicts A"),
        (2, "A B . A C", [1, 1, 1], "A's hit after resident code makes B the least recent: C evicts B"),
        // Three buffers: the sequence. A B C load; B hits; D evicts A (least
        // recent: A at 1, C at 3, B at 4); A evicts C (C at 3, B at 4, D at 5). 5 loads.
        (3, "A B C B D A", [2, 1, 1, 1], "the least recently entered, not the least recently loaded"),
        (3, "A B A B C A B", [1, 1, 1], "an empty buffer is filled before anything is evicted"),
        (3, "A B C A D B", [1, 2, 1, 1], "D evicts B (A was re-entered); B evicts C"),
        (3, "A B C C B A D A B C", [1, 1, 2, 1], "hits on C, B, A leave C least recent for D; C then evicts D (B at 9, A at 8)"),
        // Four buffers.
        (4, "A B C D A E B", [1, 2, 1, 1, 1], "E evicts B (least recent after A's hit), B evicts C"),
        (4, "A B C D E A", [2, 1, 1, 1, 1], "E evicts A, A evicts B"),
        (4, "D C B A E D", [1, 1, 1, 2, 1], "order of first entry, not cluster number, decides"),
        // Eight buffers.
        (8, "A B C D E F G H A B C D E F G H", [1, 1, 1, 1, 1, 1, 1, 1], "eight clusters fit eight buffers"),
        (8, "A B C D E F G H B I B A", [2, 1, 1, 1, 1, 1, 1, 1, 1], "I evicts A, A evicts C (B was re-entered)"),
        (8, "A B C D E F G H I A B", [2, 2, 1, 1, 1, 1, 1, 1, 1], "a cycle one longer than the buffers misses every time"),
    ]

    @Test(arguments: handWorked.indices)
    func handWorkedSequences(_ i: Int) {
        let (n, t, expected, why) = LoadRuleOracleTests.handWorked[i]
        #expect(oracle(t, buffers: n) == expected, "oracle, \(n) buffers, \(t): \(why)")
        #expect(replay(t, buffers: n) == expected, "replay, \(n) buffers, \(t): \(why)")
    }

    /// The example in total: 5 loads with three buffers, and the same trace with
    /// other buffer counts.
    @Test func threeBuffersABCBDA() {
        #expect(replay("A B C B D A", buffers: 3).reduce(0, +) == 5)
        #expect(replay("A B C B D A", buffers: 1).reduce(0, +) == 6)
        #expect(replay("A B C B D A", buffers: 2).reduce(0, +) == 5)  // A B, C evicts A, B hits, D evicts C, A evicts B
        #expect(replay("A B C B D A", buffers: 4).reduce(0, +) == 4)
    }

    /// Random traces over a random chain → cluster map with some resident chains, for the
    /// buffer counts the manager supports in practice: the replay equals the oracle, per
    /// cluster and, for the explorer's what-if, per chain.
    @Test(arguments: [1, 2, 3, 4, 5, 8, 16])
    func randomTracesAgreeWithTheOracle(buffers: Int) {
        var rng = SplitMix(seed: 0x5eed + UInt64(buffers))
        for round in 0..<200 {
            let clusters = 1 + Int(rng.next() % UInt64(3 * buffers + 3))
            let chains = clusters + 1 + Int(rng.next() % 20)
            // Every cluster has at least one chain; the rest are in a random cluster or resident.
            var map = (0..<Int32(clusters)).map { $0 }
            for _ in clusters..<chains { map.append(rng.next() % 4 == 0 ? -1 : Int32(rng.next() % UInt64(clusters))) }
            // Locality, as in real traces: mostly a small working set, sometimes a jump away.
            var seq: [Int32] = []
            var hot = Int32(0)
            for _ in 0..<(50 + Int(rng.next() % 400)) {
                if rng.next() % 8 == 0 { hot = Int32(rng.next() % UInt64(chains)) }
                let spread = UInt64(min(chains, buffers + 2))
                seq.append((hot + Int32(rng.next() % spread)) % Int32(chains))
            }
            let expected = LoadRuleOracle.loads(seq, chainCluster: map, clusters: clusters, buffers: buffers)
            let got = CostModel.replay(seq, chainCluster: map, clusters: clusters, buffers: buffers)
            #expect(got == expected.byCluster, "round \(round), \(buffers) buffers, \(clusters) clusters: \(seq.prefix(40))")
            let byChain = CostModel.replayByChain(seq, chainCluster: map, chains: chains, buffers: buffers)
            #expect(byChain == expected.byChain, "round \(round), per chain")
        }
    }

    /// The committed sample traces against real clusterings: the replay the engine uses
    /// (CostModel's compacted sequence) equals the oracle on the raw chain sequence.
    @Test func sampleTracesAgreeWithTheOracle() throws {
        for name in ["crc", "interp", "deepchain"] {
            let bin = Fixture.samples + "/" + name
            let s = try Session.open(image: bin, profiles: Fixture.traces(of: bin), config: Config(), showProgress: false)
            let model = CostModel(session: s)
            var cfg = s.config
            cfg.gamma = 0
            cfg.bufferSize = 1024
            try s.update(cfg)
            let c = s.cluster(recordEvents: false)
            #expect(c.clusterCount > 8, "\(name): enough clusters to evict with eight buffers")
            for (i, p) in s.profiles.enumerated() {
                for buffers in [1, 2, 3, 4, 8] {
                    let got = CostModel.replay(model.compact[i], chainCluster: c.chainCluster, clusters: c.clusterCount, buffers: buffers)
                    let raw = p.chainRuns.filter { $0 >= 0 }
                    let expected = LoadRuleOracle.loads(raw, chainCluster: c.chainCluster, clusters: c.clusterCount, buffers: buffers).byCluster
                    #expect(got == expected, "\(p.name), \(buffers) buffers")
                    #expect(expected.reduce(0, +) > 0, "\(p.name) loads something")
                }
            }
        }
    }
}
