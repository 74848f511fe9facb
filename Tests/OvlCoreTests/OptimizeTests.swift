import Foundation
import Testing
@testable import OvlCore

/// The affinity layout on hand-worked graphs and traces, Figure 1's sizes against a count
/// written here, and Belady's replacement against an exhaustive search.
@Suite struct AffinityLayoutTests {
    func layout(_ g: HandGraph, _ seqs: [[Int32]], core: Set<Int> = [], budget: Int = 0, buffer: Int = 2048, functions: [Int32]? = nil) -> Clustering {
        AffinityLayout.run(graph: g.graph, sequences: seqs, coreChains: g.sizes.indices.map { core.contains($0) },
                           chainFunction: functions ?? g.sizes.indices.map { Int32($0) }, residentBudget: budget, bufferSize: buffer)
    }

    /// A (chain 1, 600 B) and B (chain 3, 600 B) alternate with resident R (chain 0,
    /// 2,000 B) between them and never transfer to each other; chains 2 and 4 (600 B each)
    /// run once each, later. Edges tie every chain to R alone, and core has no room at
    /// γ = 0, so Figure 2 pairs the leftovers in defragmentation by size and address
    /// (1 with 2, 3 with 4) and A and B reload each other. Temporal affinity puts A and B
    /// in one cluster: it loads once, then 2 and 4 once.
    @Test func codeThatAlternatesAcrossResidentCodeSharesACluster() {
        var g = HandGraph([2000, 600, 600, 600, 600])
        g.edge(0, 1, 20); g.edge(0, 3, 20); g.edge(0, 2, 1); g.edge(0, 4, 1)
        var seq: [Int32] = []
        for _ in 0..<10 { seq += [0, 1, 0, 3] }
        seq += [0, 2, 0, 4]
        let c = layout(g, [seq], core: [0], buffer: 1300)
        #expect(c.chainCluster[1] == c.chainCluster[3] && c.chainCluster[1] >= 0)
        let loads = CostModel.replay(seq, chainCluster: c.chainCluster, clusters: c.clusterCount, buffers: 1).reduce(0, +)
        #expect(loads == 2)
        let fig2 = g.run(core: [0], gamma: 0, buffer: 1300)
        #expect(fig2.groups == [[1, 2], [3, 4]])
        let fig2Loads = CostModel.replay(seq, chainCluster: fig2.chainCluster, clusters: fig2.clusterCount, buffers: 1).reduce(0, +)
        #expect(fig2Loads == 22)  // 20 alternations, then 2 and 4 each reload their cluster
    }

    /// Resident code beyond core goes to the chains with the most entries per byte.
    /// Entries: chain 1 (100 B) 40 times, chain 2 (1000 B) 50 times, chain 3 (50 B) 10
    /// times. Densities 0.4, 0.05, 0.2: with a 160 B budget, 1 and 3 (150 B) stay resident.
    @Test func theBudgetGoesToTheMostEntriesPerByte() {
        let g = HandGraph([100, 100, 1000, 50])
        var seq: [Int32] = []
        for i in 0..<50 {
            seq.append(0); seq.append(2)
            if i < 40 { seq += [0, 1] }
            if i < 10 { seq += [0, 3] }
        }
        let c = layout(g, [seq], core: [0], budget: 160)
        #expect(c.chainState == [.core, .hot, .cold, .hot])
        #expect(c.chainCluster[1] == -1 && c.chainCluster[3] == -1 && c.chainCluster[2] >= 0)
    }

    /// Code no profile ran is grouped by address, a function's chains together: functions
    /// f (chains 1, 2: 600 + 600) and g (chains 3, 4: 500 + 500), buffer 1,500. f fills a
    /// cluster; g does not fit in what f leaves, so it starts a fresh one instead of being
    /// split across two.
    @Test func unseenCodeIsPackedByAddressWithFunctionsKeptWhole() {
        let g = HandGraph([100, 600, 600, 500, 500])
        let c = layout(g, [[0, 0]], core: [0], buffer: 1500, functions: [0, 1, 1, 2, 2])
        #expect(c.groups == [[1, 2], [3, 4]])
    }

    /// On every sample and trace, at three budgets and two buffers: every cluster fits the
    /// buffer, each cluster's size is Figure 1's count made here from the graph, resident
    /// code holds core, and the same inputs give the same clustering.
    @Test(arguments: Fixture.sampleBinaries)
    func clustersFitTheBufferAndHaveFigureOneSizes(_ binary: String) throws {
        guard let trace = Fixture.traces(of: binary).first else { return }
        let s = try Session.open(image: binary, profiles: [trace], config: Config(), showProgress: false)
        let g = s.graph
        for budget in [0, s.executedCodeBytes / 4, s.executedCodeBytes] {
            for buffer in [1024, 2048] {
                let c = AffinityLayout.run(session: s, residentBudget: budget, bufferSize: buffer)
                let again = AffinityLayout.run(session: s, residentBudget: budget, bufferSize: buffer)
                #expect(c.chainCluster == again.chainCluster)
                // Figure 1, counted independently: instructions, plus for every transfer
                // between two units the stub bytes of the side it leaves (calls always,
                // jumps unless into resident code).
                var expected = [Int](repeating: 0, count: c.clusterCount)
                for ch in 0..<g.chainCount where c.chainCluster[ch] >= 0 {
                    expected[Int(c.chainCluster[ch])] += Int(g.chainBytes[ch] + g.chainIndirectStubBytes[ch])
                }
                for e in 0..<g.edgeCount {
                    let a = c.chainCluster[Int(g.edgeA[e])], b = c.chainCluster[Int(g.edgeB[e])]
                    if a == b { continue }
                    if a >= 0 { expected[Int(a)] += Int(g.edgeCallAB[e]) + (b >= 0 ? Int(g.edgeJumpAB[e]) : 0) }
                    if b >= 0 { expected[Int(b)] += Int(g.edgeCallBA[e]) + (a >= 0 ? Int(g.edgeJumpBA[e]) : 0) }
                }
                #expect(c.clusterSize.map(Int.init) == expected, "\(binary) budget \(budget) buffer \(buffer)")
                #expect(c.clusterSize.allSatisfy { Int($0) <= buffer }, "\(binary): a cluster exceeds the buffer")
                for ch in 0..<g.chainCount where s.coreChains[ch] { #expect(c.chainCluster[ch] == -1) }
                #expect(c.clusterChains.enumerated().allSatisfy { k, m in m.allSatisfy { c.chainCluster[Int($0)] == Int32(k) } })
            }
        }
    }
}

@Suite struct BeladyTests {
    /// Two buffers, clusters A B C A B. LRU: A, B, C (evicts A), A (evicts B), B (evicts
    /// C): 5 loads. Belady at C evicts B (needed later than A): A, B, C, A hit, B: 4.
    @Test func handWorkedSequence() {
        let map: [Int32] = [0, 1, 2]
        let seq: [Int32] = [0, 1, 2, 0, 1]
        #expect(CostModel.replay(seq, chainCluster: map, clusters: 3, buffers: 2).reduce(0, +) == 5)
        #expect(Belady.loads(seq, chainCluster: map, buffers: 2) == 4)
    }

    /// The fewest loads over every eviction choice, found by exhaustive search.
    func optimum(_ seq: [Int32], buffers: Int) -> UInt64 {
        func go(_ i: Int, _ held: [Int32]) -> UInt64 {
            if i == seq.count { return 0 }
            let k = seq[i]
            if held.contains(k) { return go(i + 1, held) }
            if held.count < buffers { return 1 + go(i + 1, held + [k]) }
            var best = UInt64.max
            for j in held.indices {
                var h = held
                h[j] = k
                best = min(best, 1 + go(i + 1, h))
            }
            return best
        }
        return go(0, [])
    }

    @Test func equalsTheExhaustiveOptimumAndNeverExceedsLRU() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let clusters = Int.random(in: 2...5, using: &rng)
            let buffers = Int.random(in: 1...3, using: &rng)
            var seq: [Int32] = []
            for _ in 0..<Int.random(in: 1...11, using: &rng) {
                let k = Int32.random(in: 0..<Int32(clusters), using: &rng)
                if seq.last != k { seq.append(k) }
            }
            let map = (0..<Int32(clusters)).map { $0 }
            let b = Belady.loads(seq, chainCluster: map, buffers: buffers)
            #expect(b == optimum(seq, buffers: buffers), "\(seq) with \(buffers) buffers")
            #expect(b <= CostModel.replay(seq, chainCluster: map, clusters: clusters, buffers: buffers).reduce(0, +))
        }
    }
}

@Suite struct OptimizerTests {
    /// The frontier's points get strictly cheaper as memory grows, every point is one the
    /// search tried, and paging is reported at each point's own memory.
    @Test func theFrontierIsParetoOptimal() throws {
        let s = try Session.open(image: Fixture.samples + "/dijkstra", profiles: [Fixture.samples + "/dijkstra.a.trace"], config: Config(), showProgress: false)
        let opt = Optimizer(session: s)
        let tried = opt.search(Optimizer.Options(bufferSizes: [1024, 2048], bufferCounts: [1, 2], budgetFractions: [0, 0.25, 0.5, 1]))
        #expect(tried.count == 16)
        let front = Optimizer.frontier(tried)
        #expect(!front.isEmpty)
        for (a, b) in zip(front, front.dropFirst()) {
            #expect(a.totalMemory <= b.totalMemory && b.cost < a.cost)
        }
        for p in tried {
            #expect(front.contains { $0.totalMemory <= p.totalMemory && $0.cost <= p.cost }, "a tried point beats the frontier")
        }
        let model = CostModel(session: s)
        for p in opt.finish(front) {
            let paging = model.paging(s.profiles[0], totalMemory: p.totalMemory)
            #expect(p.phases[0].pagingLoads == paging.loads)
            #expect(p.memory.exact, "the samples can be rewritten: memory is measured")
        }
    }
}
