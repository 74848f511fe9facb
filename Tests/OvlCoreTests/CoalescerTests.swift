import Testing
@testable import OvlCore

/// A small cluster graph written by hand: chain sizes, and edges with weights and stub bytes.
struct HandGraph {
    var sizes: [Int32]
    var indirect: [Int32] = []
    var edges: [(a: Int32, b: Int32, w: UInt64, jab: Int32, jba: Int32, cab: Int32, cba: Int32)] = []

    init(_ sizes: [Int32]) { self.sizes = sizes; indirect = sizes.map { _ in 0 } }

    mutating func edge(_ a: Int32, _ b: Int32, _ w: UInt64, jab: Int32 = 0, jba: Int32 = 0, cab: Int32 = 0, cba: Int32 = 0) {
        edges.append((a, b, w, jab, jba, cab, cba))
    }

    var graph: ClusterGraph {
        ClusterGraph(chainBytes: sizes, chainIndirectStubBytes: indirect, chainHeat: sizes.map { _ in 0 },
                     edgeA: edges.map(\.a), edgeB: edges.map(\.b), edgeWeight: edges.map(\.w),
                     edgeJumpAB: edges.map(\.jab), edgeJumpBA: edges.map(\.jba), edgeCallAB: edges.map(\.cab), edgeCallBA: edges.map(\.cba))
    }

    func run(core: Set<Int> = [], gamma: Double = 0, buffer: Int = 2048, defragIntoCore: Bool = false) -> Clustering {
        Coalescer.run(graph, CoalescerParameters(gamma: gamma, bufferSize: buffer,
                                                 coreChains: sizes.indices.map { core.contains($0) },
                                                 defragmentIntoCore: defragIntoCore))
    }
}

extension Clustering {
    /// Clusters as sets of chains, for comparing with a hand-worked answer.
    var groups: Set<Set<Int32>> { Set(clusterChains.map { Set($0) }) }
}

@Suite struct CoalescerTests {
    /// A(500)-B(600) w10, B-C(700) w8, C-D(900) w5, A-D w1; no core; buffer 2048.
    /// A+B = 1100, +C = 1800; ABC-D weighs 5+1 = 6 and would be 2700: refused.
    /// Defragmentation cannot join 1800 and 900 either.
    @Test func edgesInDescendingWeightUntilTheBufferIsFull() {
        var g = HandGraph([500, 600, 700, 900])
        g.edge(0, 1, 10); g.edge(1, 2, 8); g.edge(2, 3, 5); g.edge(0, 3, 1)
        let c = g.run()
        #expect(c.groups == [[0, 1, 2], [3]])
        #expect(c.clusterSize == [1800, 900])
        #expect(c.events.map(\.kind) == [.merged, .merged, .refused])
        #expect(c.events[0] == CoalesceEvent(kind: .merged, a: 0, b: 1, weight: 10, sizeA: 500, sizeB: 600, result: 1100, limit: 2048))
        #expect(c.events[1].weight == 8 && c.events[1].result == 1800)
        #expect(c.events[2] == CoalesceEvent(kind: .refused, a: 0, b: 3, weight: 6, sizeA: 1800, sizeB: 900, result: 2700, limit: 2048))
    }

    /// Core K(4000) with A(100) w50, B(300) w40, A-C(200) w30.
    /// γ = 10%: core may reach 4400: A joins (4100), B joins (4400), C would make 4600.
    @Test func coreAbsorbsHotCodeWithinGamma() {
        var g = HandGraph([4000, 100, 300, 200])
        g.edge(0, 1, 50); g.edge(0, 2, 40); g.edge(1, 3, 30)
        let c = g.run(core: [0], gamma: 10)
        #expect(c.coreLimit == 4400)
        #expect(c.residentCodeBytes == 4400)
        #expect(c.chainState == [.core, .hot, .hot, .cold])
        #expect(c.groups == [[3]])
        #expect(c.events.map(\.kind) == [.absorbedIntoCore, .absorbedIntoCore, .refused])
        #expect(c.events[2].a == -1 && c.events[2].result == 4600 && c.events[2].limit == 4400)
    }

    /// Edges never taken all weigh 0 and tie: core's come first, by the other side's
    /// chain. Core is chains 0 and 3 (1,000 B, limit 1,150 B at γ = 15%, above the 500 B
    /// buffer); it touches 5
    /// through 0 and 2 through 3, so 5's pair is found first among the edges, yet 2 (the
    /// lower chain) is asked first and takes the room that 5 would have needed.
    @Test func untakenEdgesTieByCoresOtherSide() {
        var g = HandGraph([500, 50, 100, 500, 50, 100])
        g.edge(0, 5, 0); g.edge(2, 3, 0)
        let c = g.run(core: [0, 3], gamma: 15, buffer: 500)
        #expect(c.coreLimit == 1150)
        #expect(c.chainState[2] == .hot && c.chainState[5] == .cold)
        #expect(c.events.first.map { $0.kind == .absorbedIntoCore && $0.b == 2 } == true)
    }

    /// The same graph at γ = 0: core may not grow at all, so A and C join (300) and
    /// defragmentation adds B (600).
    @Test func gammaZeroKeepsOnlyCore() {
        var g = HandGraph([4000, 100, 300, 200])
        g.edge(0, 1, 50); g.edge(0, 2, 40); g.edge(1, 3, 30)
        let c = g.run(core: [0], gamma: 0)
        #expect(c.residentCodeBytes == 4000)
        #expect(c.chainState == [.core, .cold, .cold, .cold])
        #expect(c.groups == [[1, 2, 3]])
        #expect(c.events.map(\.kind) == [.refused, .refused, .merged, .defragmented])
    }

    /// Figure 2's rule max(C.cluster_size, BufSz): a core smaller than the buffer may
    /// grow to the buffer's size whatever γ is.
    @Test func smallCoreMayGrowToTheBufferSize() {
        var g = HandGraph([1000, 900, 500])
        g.edge(0, 1, 9); g.edge(0, 2, 8)
        let c = g.run(core: [0], gamma: 0)
        #expect(c.chainState == [.core, .hot, .cold])
        #expect(c.residentCodeBytes == 1900)
    }

    /// X (3000 B) cannot fit a 2048-byte buffer: it stays resident, is listed, and does
    /// not count towards γ's base.
    @Test func chainLargerThanTheBufferStaysResident() {
        var g = HandGraph([1000, 3000, 50])
        g.edge(1, 2, 5)
        let c = g.run(core: [0], gamma: 10)
        #expect(c.oversizeChains == [1])
        #expect(c.chainState[1] == .oversize)
        #expect(c.coreBaseBytes == 1000)
        #expect(c.coreLimit == 4000 + 100)
        // X pulls its 50-byte neighbour into resident code: 4050 ≤ 4100.
        #expect(c.chainState[2] == .hot)
        #expect(c.clusterCount == 0)
    }

    /// Equal weights are taken by lowest chains first: (0,1), then the joined (0,2), then
    /// (0,3) is refused.
    @Test func tiesAreBrokenByLowestChains() {
        var g = HandGraph([600, 600, 600, 600])
        g.edge(2, 3, 5); g.edge(1, 2, 5); g.edge(0, 1, 5)
        let c = g.run()
        #expect(c.groups == [[0, 1, 2], [3]])
        #expect(c.events.map { [$0.a, $0.b] } == [[0, 1], [0, 2], [0, 3]])
    }

    /// Figure 1: a cluster's size counts the stubs of transfers that leave it, and they go
    /// when the two sides join. A = 1000 + 5 (call stub to B), B = 1040 + 8 (jump stub to
    /// A): 2053 apart, 2040 together, which fits.
    @Test func stubBytesAreRecomputedWhenClustersJoin() {
        var g = HandGraph([1000, 1040])
        g.edge(0, 1, 3, jba: 8, cab: 5)
        let c = g.run()
        #expect(c.groups == [[0, 1]])
        #expect(c.clusterSize == [2040])
        #expect(c.events[0].sizeA == 1005 && c.events[0].sizeB == 1048 && c.events[0].result == 2040)
    }

    /// Jumps into core need no stub; calls into core do (their return address is in the
    /// buffer). Once A joins core, Z's jump into A loses its stub too.
    @Test func jumpsIntoResidentCodeNeedNoStub() {
        var g = HandGraph([3000, 500, 1000])
        g.edge(1, 0, 9, jab: 8, cab: 5)   // A jumps (8) and calls (5) into core
        g.edge(2, 1, 1, jab: 8)           // Z jumps into A
        let before = g.run(core: [0], gamma: 0)
        #expect(before.groups == [[1, 2]])
        #expect(before.clusterSize == [1505])  // Z's jump to A is inside the cluster
        let after = g.run(core: [0], gamma: 20)  // core may grow to 3600: A joins
        #expect(after.chainState[1] == .hot)
        #expect(after.residentCodeBytes == 3500)
        #expect(after.clusterSize == [1000])   // Z's jump now lands in resident code
    }

    /// Fig. 2's re-look: a join into core shrinks other clusters (their jumps into the
    /// absorbed code lose their stubs), so an edge refused earlier may fit later.
    /// Core K(3000), γ 10 % (limit 3300); A(100); X(1000) jumps into A (8 B stub while A
    /// is cold); Y(1045); Z(40) alone. Edges: X–Y w10, K–A w5, X–A w1.
    ///  1. X–Y: 1008 + 1045 = 2053 > 2048, refused.
    ///  2. K–A: 3000 + 100 = 3100 ≤ 3300, A becomes hot; X's jump into A needs no stub: X = 1000.
    ///  3. X–core (the X–A edge): 3100 + 1000 > 3300, refused.
    ///  4. Looking again: X–Y is now 1000 + 1045 = 2045 ≤ 2048: merged.
    /// Defragmentation then finds no partner for Z (2045 + 40 > 2048). Without the
    /// re-look, X and Y would be left apart and defragmentation would pair Z with Y
    /// (40 + 1045), leaving X alone: {X}, {Y, Z}.
    @Test func aRefusedEdgeIsTakenWhenItFitsLater() {
        var g = HandGraph([3000, 100, 1000, 1045, 40])
        g.edge(2, 3, 10)
        g.edge(0, 1, 5)
        g.edge(2, 1, 1, jab: 8)
        let c = g.run(core: [0], gamma: 10)
        #expect(c.coreLimit == 3300)
        #expect(c.chainState == [.core, .hot, .cold, .cold, .cold])
        #expect(c.residentCodeBytes == 3100)
        #expect(c.groups == [[2, 3], [4]])
        #expect(c.clusterSize == [2045, 40])
        #expect(c.events.map(\.kind) == [.refused, .absorbedIntoCore, .refused, .merged])
        #expect(c.events[0] == CoalesceEvent(kind: .refused, a: 2, b: 3, weight: 10, sizeA: 1008, sizeB: 1045, result: 2053, limit: 2048))
        #expect(c.events[3] == CoalesceEvent(kind: .merged, a: 2, b: 3, weight: 10, sizeA: 1000, sizeB: 1045, result: 2045, limit: 2048))
    }

    @Test func defragmentationPacksLeftoversBestFit() {
        // No edges: defragmentation alone. Sizes 1500, 1000, 900, 500, 100.
        // Smallest first: 100 joins the largest that fits (1500 → 1600); 500 joins 1000
        // (1500, the largest ≤ 1548); 900 finds nothing ≤ 1148 but... 1500 > 1148, 1600 too.
        let g = HandGraph([1500, 1000, 900, 500, 100])
        let c = g.run()
        #expect(c.groups == [[0, 4], [1, 3], [2]])
        #expect(c.events.allSatisfy { $0.kind == .defragmented })
    }

    @Test func defragmentIntoCoreWhenAsked() {
        var g = HandGraph([4000, 100, 200])
        g.edge(0, 1, 0)
        let off = g.run(core: [0], gamma: 10)
        #expect(off.residentCodeBytes == 4100)  // absorbed through its zero-weight edge
        #expect(off.groups == [[2]])
        let on = g.run(core: [0], gamma: 10, defragIntoCore: true)
        #expect(on.residentCodeBytes == 4300)
        #expect(on.clusterCount == 0)
    }
}
