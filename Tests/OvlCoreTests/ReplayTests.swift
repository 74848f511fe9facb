import OvlTestSupport
import Foundation
import Testing
@testable import OvlCore

/// Loads counted by hand on hand-written traces. Chains: 0 core (resident); 1 and 2 in
/// cluster 0; 3 in cluster 1; 4 in cluster 2.
@Suite struct ReplayTests {
    static let map: [Int32] = [-1, 0, 0, 1, 2]

    func loads(_ seq: [Int32], buffers: Int = 1) -> [UInt64] {
        CostModel.replay(seq, chainCluster: ReplayTests.map, clusters: 3, buffers: buffers)
    }

    @Test func callsAcrossClusters() {
        // core → c0 → core → c1 → core → c0: c0 is loaded twice, c1 once.
        #expect(loads([0, 1, 0, 3, 0, 1]) == [2, 1, 0])
    }

    @Test func returnIntoAnEvictedCallerReloadsIt() {
        // A (c0) calls B (c1), B returns into A: the restore stub reloads c0.
        #expect(loads([1, 3, 1]) == [2, 1, 0])
    }

    @Test func coreBetweenTwoColdStretchesEvictsNothing() {
        // c0 calls a core function that returns: c0 is still in the buffer.
        #expect(loads([1, 0, 1, 0, 2]) == [1, 0, 0])
    }

    @Test func recursionInsideOneClusterLoadsOnce() {
        #expect(loads([1, 2, 1, 2, 1, 2, 1]) == [1, 0, 0])
    }

    @Test func deepCallChainAcrossClusters() {
        // c0 → c1 → c2 → returns c1 → returns c0, with core in between each step.
        #expect(loads([1, 0, 3, 0, 4, 0, 3, 0, 1]) == [2, 2, 1])
    }

    @Test func twoBuffersLeastRecentlyUsed() {
        // c0, c1 loaded; both hit; c2 evicts c0 (least recent); c0 evicts c1.
        #expect(loads([1, 3, 1, 3, 4, 1], buffers: 2) == [2, 1, 1])
        #expect(loads([1, 3, 1, 3, 4, 1], buffers: 1) == [3, 2, 1])
        #expect(loads([1, 3, 1, 3, 4, 1], buffers: 3) == [1, 1, 1])
    }

    /// On every sample trace, the edge-weight estimate is never below the exact replay.
    @Test func edgeEstimateBoundsTheExactReplay() throws {
        for name in ["crc", "sortcb", "interp", "recurse", "deepchain"] {
            let bin = Fixture.samples + "/" + name
            let s = try Session.open(image: bin, profiles: Fixture.traces(of: bin), config: Config(), showProgress: false)
            let model = CostModel(session: s)
            for gamma in [0.0, 10] {
                var cfg = s.config
                cfg.gamma = gamma
                cfg.bufferSize = 1024
                try s.update(cfg)
                let c = s.cluster(recordEvents: false)
                for (i, p) in s.profiles.enumerated() {
                    let exact = CostModel.replay(model.compact[i], chainCluster: c.chainCluster, clusters: c.clusterCount, buffers: 1)
                    let bound = CostModel.edgeBound(p, chainCluster: c.chainCluster, clusters: c.clusterCount)
                    for k in 0..<c.clusterCount { #expect(bound[k] >= exact[k], "\(name) cluster \(k)") }
                }
            }
        }
    }

    /// Table 2's cost: Σ ceil(size / page) × loads × t_page.
    @Test func costFollowsThePageModel() {
        var cfg = Config()
        cfg.pageSize = 1000
        cfg.pageReadMicroseconds = 100
        let c = Clustering(chainCluster: [0, 1], chainState: [.cold, .cold], clusterSize: [999, 1001],
                           clusterChains: [[0], [1]], residentCodeBytes: 0, coreBaseBytes: 0, coreLimit: 0,
                           oversizeChains: [], events: [], parameters: CoalescerParameters(gamma: 0, bufferSize: 2048, coreChains: [false, false]))
        let pc = CostModel.summarise(phase: "p", exact: true, loads: [3, 2], clustering: c, config: cfg)
        #expect(pc.loads == 5)
        #expect(pc.bytesLoaded == 3 * 999 + 2 * 1001)
        #expect(abs(pc.estimatedCostSeconds - Double(3 * 1 + 2 * 2) * 100e-6) < 1e-12)
    }

    /// Paging with one frame faults on every change of page.
    @Test func pagingBaselineOnAnObviousTrace() throws {
        let bin = Fixture.samples + "/crc"
        let p = try Program.load(path: bin)
        let chains = Chains(program: p, granularity: .block)
        // Two blocks on different 2 KB pages, alternated five times.
        let a = 0
        func page(_ x: Int) -> UInt64 { p.blockStart[x] / 2048 }
        func lastPage(_ x: Int) -> UInt64 { (p.blockStart[x] + UInt64(p.blockSize[x]) - 1) / 2048 }
        #expect(page(a) == lastPage(a))
        let b = try #require((0..<p.blockCount).first { page($0) != page(a) && lastPage($0) == page($0) })
        let prof = Profile(name: "alternate", chainRuns: [], blockCount: p.blockCount, chainEdges: [:])
        for _ in 0..<5 { prof.segments += [Int32(a), Int32(b)] }   // segments of one block each
        let s = Session(program: p, profiles: [prof], config: Config(), chains: chains)
        let model = CostModel(session: s)
        let one = model.paging(prof, totalMemory: 2048)
        #expect(one.frames == 1)
        #expect(one.loads == 10)
        let two = model.paging(prof, totalMemory: 4096)
        #expect(two.frames == 2)
        #expect(two.loads == 2)
    }

    /// The pages a trace touches, as the cost model lists them for paging, against the
    /// segments walked address range by address range: every page from the first block's
    /// start to the last block's end, repeats folded. Page sizes below a block's size,
    /// the usual one, and one that is not a power of two.
    @Test(arguments: ["crc-glibc", "sortcb", "interp"])
    func pageSequenceFollowsTheSegments(name: String) throws {
        let bin = Fixture.samples + "/" + name
        let s = try Session.open(image: bin, profiles: Fixture.traces(of: bin), config: Config(), showProgress: false)
        let p = s.program
        for prof in s.profiles where prof.hasSequence {
            for size in [16, 100, 4096] as [UInt64] {
                var expected: [UInt64] = []
                for (f, l) in zip(prof.segmentFirst, prof.segmentLast) where f >= 0 {
                    var a = p.blockStart[Int(f)]
                    let end = p.blockStart[Int(l)] + UInt64(p.blockSize[Int(l)])
                    while a < end {
                        if expected.last != a / size { expected.append(a / size) }
                        a = (a / size + 1) * size
                    }
                }
                let low = p.blockStart[0] / size
                let got = CostModel.pageSequence(prof, program: p, pageSize: size)
                let listed = got.sequence.map { UInt64($0) + low }
                let firstDifference = (0..<min(listed.count, expected.count)).first { listed[$0] != expected[$0] } ?? min(listed.count, expected.count)
                #expect(listed.count == expected.count && firstDifference == expected.count,
                        "\(name) \(prof.name), \(size) B pages: \(listed.count) pages listed, \(expected.count) expected, first difference at \(firstDifference)")
                #expect(got.count == Int((expected.max() ?? low) - low) + (expected.isEmpty ? 0 : 1))
            }
        }
        // The session's basis lists them at its page size.
        let basis = s.costBasis
        for (i, prof) in s.profiles.enumerated() where prof.hasSequence {
            let direct = CostModel.pageSequence(prof, program: p, pageSize: UInt64(s.config.pageSize))
            #expect(basis.pages[i]?.sequence == direct.sequence && basis.pages[i]?.count == direct.count)
            #expect(basis.compact[i] == CostModel.compact(prof))
        }
    }

    /// Mattson's one-pass curve, and the engine's own simulation for one frame count,
    /// against a plain LRU simulation (a linked list in recency
    /// order, evicting the tail), for every frame count on random page sequences.
    @Test(arguments: [1, 2, 3, 4, 5] as [UInt64])
    func faultCurveEqualsLRUSimulation(seed: UInt64) {
        var rng = SplitMix(seed: seed &* 104_729)
        let pages = [1, 3, 17, 60, 300][Int(seed - 1)]
        var seq: [UInt32] = []
        for _ in 0..<4000 {
            // Mostly a drifting working set, sometimes a jump anywhere.
            let base = seq.last.map { Int($0) } ?? 0
            let pg = rng.next() % 8 == 0 ? Int(rng.next() % UInt64(pages)) : (base + Int(rng.next() % 5) + pages - 2) % pages
            if seq.last != UInt32(pg) { seq.append(UInt32(pg)) }
        }
        let curve = LRUFaultCurve(seq, pages: pages)
        for frames in 1...(pages + 2) {
            let expected = ReplayTests.lruFaults(seq, pages: pages, frames: frames)
            #expect(curve.faults(frames: frames) == expected, "seed \(seed), \(frames) frames")
            #expect(LRUFaultCurve.simulate(seq, pages: pages, frames: frames) == expected, "seed \(seed), \(frames) frames, simulated")
        }
    }

    /// Worked by hand: a b c a b c with 2 frames faults six times, with 3 frames three.
    @Test func faultCurveByHand() {
        let curve = LRUFaultCurve([0, 1, 2, 0, 1, 2], pages: 3)
        #expect(curve.faults(frames: 1) == 6)
        #expect(curve.faults(frames: 2) == 6)
        #expect(curve.faults(frames: 3) == 3)
        #expect(curve.faults(frames: 100) == 3)
        let reuse = LRUFaultCurve([0, 1, 0, 1, 2, 0], pages: 3)
        #expect(reuse.faults(frames: 2) == 4)   // 0, 1, hit, hit, 2 evicts 0 (least recent), 0 again
        #expect(reuse.faults(frames: 1) == 6)
    }

    /// LRU by simulation: the oracle for `LRUFaultCurve`.
    static func lruFaults(_ sequence: [UInt32], pages: Int, frames: Int) -> UInt64 {
        var recency: [UInt32] = []   // most recent first
        var faults: UInt64 = 0
        for pg in sequence {
            if let i = recency.firstIndex(of: pg) {
                recency.remove(at: i)
            } else {
                faults += 1
                if recency.count == frames { recency.removeLast() }
            }
            recency.insert(pg, at: 0)
        }
        return faults
    }

    /// Cut into stretches replayed separately (each starting from the buffers as the events
    /// before it left them), and in two-byte chain numbers, a replay counts exactly what
    /// one replay from the start counts: random sequences, one to four buffers, resident
    /// chains among them, per cluster and per chain.
    @Test(arguments: [1, 2, 3, 4] as [Int])
    func stretchesEqualOneReplay(buffers: Int) {
        var rng = SplitMix(seed: UInt64(buffers) &* 7_777)
        let chains = 200
        let map: [Int32] = (0..<chains).map { _ in rng.next() % 5 == 0 ? -1 : Int32(rng.next() % 23) }
        var seq: [Int32] = []
        for _ in 0..<20_000 {
            // A drifting working set with jumps, as a program's would be.
            let base = Int(seq.last ?? 0)
            seq.append(Int32(rng.next() % 6 == 0 ? Int(rng.next() % UInt64(chains)) : (base + Int(rng.next() % 7) + chains - 3) % chains))
        }
        let one = CostModel.replay(seq, chainCluster: map, buffers: buffers, slots: 23, parts: 1, byChain: false)
        let oneByChain = CostModel.replay(seq, chainCluster: map, buffers: buffers, slots: chains, parts: 1, byChain: true)
        #expect(one.reduce(0, +) > 100)
        #expect(one.reduce(0, +) == oneByChain.reduce(0, +))
        let narrow = seq.map { UInt16($0) }
        for parts in [2, 3, 7, 64] {
            #expect(CostModel.replay(seq, chainCluster: map, buffers: buffers, slots: 23, parts: parts, byChain: false) == one, "\(parts) stretches")
            #expect(CostModel.replay(seq, chainCluster: map, buffers: buffers, slots: chains, parts: parts, byChain: true) == oneByChain, "\(parts) stretches by chain")
            #expect(CostModel.replay(narrow, chainCluster: map, buffers: buffers, slots: 23, parts: parts, byChain: false) == one, "\(parts) stretches, two-byte chains")
        }
        // And the public entry points on the hand-worked map agree with it too.
        #expect(CostModel.replay(seq.map { $0 % 5 }, chainCluster: ReplayTests.map, clusters: 3, buffers: buffers, parts: 5)
                == CostModel.replay(seq.map { $0 % 5 }, chainCluster: ReplayTests.map, clusters: 3, buffers: buffers, parts: 1))
    }
}
