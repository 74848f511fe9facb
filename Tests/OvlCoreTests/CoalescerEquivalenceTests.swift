import OvlTestSupport
import Testing
@testable import OvlCore

/// The coalescer against the reference implementation it replaced (`ReferenceCoalescer`):
/// on random graphs, with and without core, γ from 0 to 200 %, buffers from one that
/// refuses most joins to one that takes nearly all, with defragmentation into core on and
/// off, both give the same clustering and the same event list, step for step.
@Suite struct CoalescerEquivalenceTests {
    static func same(_ x: Clustering, _ y: Clustering) -> Bool {
        x.chainCluster == y.chainCluster && x.chainState == y.chainState && x.clusterSize == y.clusterSize
            && x.clusterChains == y.clusterChains && x.residentCodeBytes == y.residentCodeBytes
            && x.coreBaseBytes == y.coreBaseBytes && x.coreLimit == y.coreLimit && x.oversizeChains == y.oversizeChains
            && x.events == y.events
    }

    @Test(arguments: Array(1...24) as [UInt64])
    func equalsTheReferenceOnRandomGraphs(seed: UInt64) {
        var rng = SplitMix(seed: seed &* 7919)
        let n = [12, 40, 150, 600][Int(seed % 4)]
        let (g, core) = CoalescerPropertyTests.randomGraph(seed: seed, chains: n)
        let graph = g.graph
        for _ in 0..<6 {
            let gamma = [0.0, 2, 5, 25, 200][Int(rng.next() % 5)]
            let buffer = [300, 1024, 2048, 8192][Int(rng.next() % 4)]
            let useCore = rng.next() % 4 != 0
            let members = g.sizes.indices.map { useCore && core.contains($0) }
            let p = CoalescerParameters(gamma: gamma, bufferSize: buffer, coreChains: members,
                                        defragmentIntoCore: rng.next() % 3 == 0, recordEvents: rng.next() % 5 != 0)
            let fast = Coalescer.run(graph, p)
            let reference = ReferenceCoalescer.run(graph, p)
            #expect(CoalescerEquivalenceTests.same(fast, reference), "seed \(seed), γ \(gamma), buffer \(buffer), core \(useCore)")
        }
    }

    /// Heavy-tailed weights with many ties and hubs (one chain touching a tenth of the
    /// others), where the order among equal weights and the surviving side of each join
    /// matter most.
    @Test(arguments: [101, 102, 103, 104] as [UInt64])
    func equalsTheReferenceWithTiesAndHubs(seed: UInt64) {
        var rng = SplitMix(seed: seed)
        let n = 400
        var g = HandGraph((0..<n).map { _ in Int32(8 + rng.next() % 300) })
        var seen = Set<UInt64>()
        func edge(_ a: Int32, _ b: Int32) {
            guard a != b, seen.insert(UInt64(min(a, b)) << 32 | UInt64(max(a, b))).inserted else { return }
            let w: UInt64 = [0, 1, 1, 2, 5, 5, 100][Int(rng.next() % 7)]
            g.edge(a, b, w, jab: rng.next() % 2 == 0 ? 5 : 0, jba: rng.next() % 3 == 0 ? 5 : 0,
                   cab: rng.next() % 2 == 0 ? 5 : 0, cba: rng.next() % 4 == 0 ? 5 : 0)
        }
        for hub in [Int32(3), 77, 200] {
            for _ in 0..<(n / 10) { edge(hub, Int32(rng.next() % UInt64(n))) }
        }
        for i in 0..<n { for _ in 0..<2 { edge(Int32(i), Int32(min(n - 1, max(0, i + Int(rng.next() % 9) - 4)))) } }
        let graph = g.graph
        for gamma in [0.0, 10, 50] {
            for buffer in [512, 2048] {
                let members = (0..<n).map { $0 % 37 == 0 }
                let p = CoalescerParameters(gamma: gamma, bufferSize: buffer, coreChains: members)
                #expect(CoalescerEquivalenceTests.same(Coalescer.run(graph, p), ReferenceCoalescer.run(graph, p)),
                        "seed \(seed), γ \(gamma), buffer \(buffer)")
            }
        }
    }
}
