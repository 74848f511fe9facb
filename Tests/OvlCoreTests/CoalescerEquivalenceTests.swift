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

/// The pair table's other shapes: the two-word slots that graphs too large for one-word
/// keys get, and a table so crowded that it is built again at almost every join; and the
/// prefetching paths of graphs too large for the caches. Each must give what the
/// reference gives.
@Suite struct PairTableShapeTests {
    @Test(arguments: [PairTable.Shape.twoWords, .crowded], Array(1...8) as [UInt64])
    func everyShapeEqualsTheReference(shape: PairTable.Shape, seed: UInt64) {
        PairTableShapeTests.againstTheReference(seed: seed &* 104_729, graphSeed: seed &+ 1000) { graph, p, _ in
            Coalescer.run(graph, p, keepPrepared: false, pairTable: shape)
        }
    }

    /// The prefetching paths (on by themselves only for graphs of over 175,000 edges):
    /// lists walked in stretches, entries' records, nodes and lists asked for ahead.
    @Test(arguments: Array(1...12) as [UInt64])
    func prefetchingEqualsTheReference(seed: UInt64) {
        PairTableShapeTests.againstTheReference(seed: seed &* 7_919, graphSeed: seed &+ 2000) { graph, p, rng in
            Coalescer.run(graph, p, keepPrepared: false, pairTable: rng.next() % 2 == 0 ? .automatic : .crowded, prefetching: true)
        }
    }

    /// Four random configurations of a random graph of 40 to 900 chains, each clustered by
    /// `run` and by the reference.
    static func againstTheReference(seed: UInt64, graphSeed: UInt64,
                                    _ run: (ClusterGraph, CoalescerParameters, inout SplitMix) -> Clustering) {
        var rng = SplitMix(seed: seed)
        let n = [40, 150, 600, 900][Int(graphSeed % 4)]
        let (g, core) = CoalescerPropertyTests.randomGraph(seed: graphSeed, chains: n)
        let graph = g.graph
        for _ in 0..<4 {
            let gamma = [0.0, 5, 25, 200][Int(rng.next() % 4)]
            let buffer = [300, 1024, 2048, 8192][Int(rng.next() % 4)]
            let members = g.sizes.indices.map { core.contains($0) && rng.next() % 3 != 0 }
            let p = CoalescerParameters(gamma: gamma, bufferSize: buffer, coreChains: members,
                                        defragmentIntoCore: rng.next() % 3 == 0, recordEvents: true)
            let ours = run(graph, p, &rng)
            #expect(CoalescerEquivalenceTests.same(ours, ReferenceCoalescer.run(graph, p)), "seed \(seed), γ \(gamma), buffer \(buffer)")
        }
    }

    /// The crowded table is really built again, and the two-word one really has two words:
    /// otherwise the test above would compare the automatic table with itself.
    @Test func theShapesDiffer() {
        let auto = PairTable(nodes: 1000, records: 5000)
        let two = PairTable(nodes: 1000, records: 5000, shape: .twoWords)
        let crowded = PairTable(nodes: 1000, records: 5000, shape: .crowded)
        defer { auto.deallocate(); two.deallocate(); crowded.deallocate() }
        #expect(auto.wide == 0 && two.wide == 1)
        #expect(auto.hasRoom(for: 3000) && !crowded.hasRoom(for: 5002))
        // One-word keys hold both nodes and find what was put in.
        var t = PairTable(nodes: 1000, records: 5000)
        defer { t.deallocate() }
        for a in Int32(0)..<40 { for b in (a + 1)..<Int32(60) { t.insert(t.key(a, b), a * 100 + b) } }
        #expect(t.find(t.key(7, 33)) == 733 && t.find(t.key(33, 7)) == 733 && t.find(t.key(40, 41)) == nil)
    }
}

/// Pinning reuses the kept state of the core set before it (`Coalescer.extend`): the
/// added chains join core there, and only the pairs they touch are queued anew. After a
/// run of pins, each on the state the last one left, the clustering must be what the
/// reference gives for the same core set from nothing.
@Suite struct PreparedExtensionTests {
    @Test(arguments: Array(1...12) as [UInt64])
    func pinsOnTheKeptStateEqualTheReference(seed: UInt64) {
        var rng = SplitMix(seed: seed &* 15_485_863)
        let n = [40, 150, 600][Int(seed % 3)]
        let (g, core) = CoalescerPropertyTests.randomGraph(seed: seed &+ 2000, chains: n)
        let graph = g.graph
        let gamma = [0.0, 5, 25, 200][Int(rng.next() % 4)]
        let buffer = [300, 1024, 2048][Int(rng.next() % 3)]
        var members = g.sizes.indices.map { core.contains($0) }
        let first = CoalescerParameters(gamma: gamma, bufferSize: buffer, coreChains: members)
        #expect(Coalescer.runReporting(graph, first).preparation == .built)
        var extended = 0
        for step in 0..<8 {
            // One to five chains more, often a neighbour of core (its pairs then merge
            // into core's), sometimes an oversize chain (already resident).
            let was = members
            for _ in 0..<(1 + Int(rng.next() % 5)) {
                if rng.next() % 2 == 0, let e = g.edges.randomElement(using: &rng) {
                    members[Int(members[Int(e.a)] ? e.b : e.a)] = true
                } else {
                    members[Int(rng.next() % UInt64(n))] = true
                }
            }
            if members == was, let c = members.firstIndex(of: false) { members[c] = true }
            let p = CoalescerParameters(gamma: gamma, bufferSize: buffer, coreChains: members,
                                        defragmentIntoCore: step % 3 == 2, recordEvents: true)
            let (kept, how) = Coalescer.runReporting(graph, p)
            if how == .extended { extended += 1 }
            #expect(how != .reused)
            #expect(CoalescerEquivalenceTests.same(kept, ReferenceCoalescer.run(graph, p)), "seed \(seed), step \(step)")
            // The same configuration again is the kept state itself.
            #expect(Coalescer.runReporting(graph, p).preparation == .reused)
        }
        // An oversize neighbour can force a rebuild now and then, not every time.
        #expect(extended >= 5, "seed \(seed): \(extended) of 8 pins extended the kept state")
    }

    /// A dropped state's memory is kept for the next state's copy (`CoalescerMemory`'s
    /// spare): a state copied into it, over what the dropped one held, must restore
    /// exactly what the reference builds, for a pin extended from it and for a γ edit.
    @Test(arguments: [5, 6, 7] as [UInt64])
    func statesCopiedIntoSpareMemoryRestoreTheSame(seed: UInt64) {
        var rng = SplitMix(seed: seed &* 31_337)
        let (g, core) = CoalescerPropertyTests.randomGraph(seed: seed &+ 3000, chains: 600)
        let graph = g.graph
        #expect(!graph.coalescerMemory.hasSpare)
        for step in 0..<6 {
            var members = g.sizes.indices.map { core.contains($0) && rng.next() % 2 == 0 }
            let buffer = [300, 1024][step % 2]
            graph.discardPrepared()
            if step > 0 { #expect(graph.coalescerMemory.hasSpare, "step \(step): the dropped state's memory is kept") }
            let p = CoalescerParameters(gamma: 5, bufferSize: buffer, coreChains: members, recordEvents: true)
            let (built, how) = Coalescer.runReporting(graph, p)
            #expect(how == .built)
            #expect(!graph.coalescerMemory.hasSpare, "step \(step): the new state was copied into the spare")
            #expect(CoalescerEquivalenceTests.same(built, ReferenceCoalescer.run(graph, p)), "seed \(seed), step \(step)")
            let edit = CoalescerParameters(gamma: 40, bufferSize: buffer, coreChains: members, recordEvents: true)
            #expect(Coalescer.runReporting(graph, edit).preparation == .reused)
            #expect(CoalescerEquivalenceTests.same(Coalescer.run(graph, edit), ReferenceCoalescer.run(graph, edit)))
            if let c = members.firstIndex(of: false) { members[c] = true }
            let pin = CoalescerParameters(gamma: 5, bufferSize: buffer, coreChains: members, recordEvents: true)
            #expect(CoalescerEquivalenceTests.same(Coalescer.run(graph, pin), ReferenceCoalescer.run(graph, pin)), "seed \(seed), step \(step) pinned")
        }
    }

    /// Pinning a chain that a chain larger than the buffer jumps into takes that jump's
    /// stub away, and the larger chain fits the buffer again: the kept state, where it
    /// sits in core, cannot be extended, and is built again.
    @Test func aChainThatFitsAgainRebuilds() {
        var g = HandGraph([2040, 100, 300])
        g.edge(0, 1, 5, jab: 14, jba: 0, cab: 0, cba: 0)
        g.edge(1, 2, 3, jab: 0, jba: 0, cab: 5, cba: 0)
        let graph = g.graph
        let before = CoalescerParameters(gamma: 0, bufferSize: 2048, coreChains: [false, false, false])
        let a = Coalescer.runReporting(graph, before)
        #expect(a.clustering.oversizeChains == [0])
        let pinned = CoalescerParameters(gamma: 0, bufferSize: 2048, coreChains: [false, true, false])
        let b = Coalescer.runReporting(graph, pinned)
        #expect(b.preparation == .built)
        #expect(b.clustering.oversizeChains.isEmpty)
        #expect(CoalescerEquivalenceTests.same(b.clustering, ReferenceCoalescer.run(graph, pinned)))
        // Unpinning goes back to the state kept for the core set before.
        let c = Coalescer.runReporting(graph, before)
        #expect(c.preparation == .reused)
        #expect(CoalescerEquivalenceTests.same(c.clustering, a.clustering))
    }

    /// The graph keeps the states of the last four core sets and buffer sizes: unpinning
    /// what was just pinned, or going back to the buffer before, starts from the state
    /// as it was; a core set no kept state is part of is built again.
    @Test func recentStatesAreKept() {
        let (g, core) = CoalescerPropertyTests.randomGraph(seed: 77, chains: 300)
        let graph = g.graph
        let k0 = g.sizes.indices.map { core.contains($0) }
        var k1 = k0
        k1[k0.firstIndex(of: false)!] = true
        func run(_ members: [Bool], buffer: Int = 1024) -> Coalescer.Preparation {
            let p = CoalescerParameters(gamma: 10, bufferSize: buffer, coreChains: members)
            let (c, how) = Coalescer.runReporting(graph, p)
            #expect(CoalescerEquivalenceTests.same(c, ReferenceCoalescer.run(graph, p)))
            return how
        }
        #expect(run(k0) == .built)
        #expect(run(k1) == .extended)       // pin
        #expect(run(k0) == .reused)         // unpin
        #expect(run(k0, buffer: 2048) == .built)
        #expect(run(k0) == .reused)         // the buffer size before
        #expect(graph.prepared.count == 3)
        // Four more core sets, none of them part of k0: k0's state goes, and k0 comes
        // from nothing again (every other kept state has more in core).
        for i in 0..<4 {
            var k = k1
            k[k0.lastIndex(of: false)! - i] = true
            #expect(run(k) == .extended)
        }
        #expect(graph.prepared.count == 4)
        #expect(run(k0) == .built)
    }

    /// A run that gives up part way (the explorer's work ahead of the user, stopped by a
    /// real edit) returns nothing and leaves the kept state whole: the runs after it, from
    /// that state, equal the reference. A stop never raised changes nothing.
    @Test(arguments: [1, 3, 9] as [Int])
    func aStoppedRunLeavesTheKeptStateWhole(stopAt: Int) {
        let (g, core) = CoalescerPropertyTests.randomGraph(seed: 91, chains: 3_000)
        let graph = g.graph
        let k0 = g.sizes.indices.map { core.contains($0) }
        var k1 = k0
        k1[k0.firstIndex(of: false)!] = true
        let p0 = CoalescerParameters(gamma: 10, bufferSize: 1024, coreChains: k0)
        let p1 = CoalescerParameters(gamma: 10, bufferSize: 1024, coreChains: k1)
        #expect(CoalescerEquivalenceTests.same(Coalescer.run(graph, p0), ReferenceCoalescer.run(graph, p0)))
        final class Asks: @unchecked Sendable { var count = 0 }
        for (params, keep) in [(p0, true), (p1, true), (p1, false)] {
            let asks = Asks()
            let stopped = Coalescer.runStoppable(graph, params, keepPrepared: keep) {
                asks.count += 1
                return asks.count >= stopAt
            }
            #expect(stopped == nil, "the run gave up")
            #expect(asks.count == stopAt, "asked until it answered true")
            var q = params
            q.gamma = 15
            let reference = ReferenceCoalescer.run(graph, q)
            #expect(CoalescerEquivalenceTests.same(Coalescer.run(graph, q), reference), "a run after the stopped one")
            let never = Coalescer.runStoppable(graph, q) { false }
            #expect(never.map { CoalescerEquivalenceTests.same($0, reference) } == true, "a stop never raised")
        }
    }
}

/// Defragmentation's set of sizes against a sorted set: random inserts and removals over
/// ranges that take one word, one summary word, and several.
@Suite struct SizeSetTests {
    @Test(arguments: [1, 64, 300, 4097, 70_000])
    func answersAsASortedSetDoes(count: Int) {
        var rng = SplitMix(seed: UInt64(count))
        var set = SizeSet(count: count)
        var oracle = Set<Int>()
        for step in 0..<4000 {
            let i = Int(rng.next() % UInt64(count))
            if rng.next() % 3 == 0 { set.remove(i); oracle.remove(i) } else { set.insert(i); oracle.insert(i) }
            #expect(set.smallest() == oracle.min(), "count \(count), step \(step)")
            let x = Int(rng.next() % UInt64(count + 10)) - 5
            #expect(set.largest(atMost: x) == oracle.filter { $0 <= x }.max(), "count \(count), step \(step), x \(x)")
        }
    }
}

/// The radix sort of the start's weighted entries against an insertion sort by key that
/// keeps equal keys in their order: keys that differ in one byte, in several, in the
/// highest (weights of 2^56 and more), and none at all.
@Suite struct StableKeySortTests {
    @Test(arguments: [0, 1, 2, 3])
    func sortsAsAStableInsertionSortDoes(spread: Int) {
        var rng = SplitMix(seed: UInt64(spread) &+ 77)
        let entries = (0..<3000).map { i -> Coalescer.HeapEntry in
            let w: UInt64 = [7, rng.next() % 300, rng.next() % 100_000, rng.next() % 4 << 56 | rng.next() % 5][spread]
            return Coalescer.HeapEntry(key: ~w, tie: UInt64(i), record: Int32(i))
        }
        var oracle: [Coalescer.HeapEntry] = []
        for e in entries {
            var at = oracle.count
            while at > 0 && oracle[at - 1].key > e.key { at -= 1 }
            oracle.insert(e, at: at)
        }
        let sorted = Coalescer.stablySortedByKey(entries)
        #expect(sorted.map(\.record) == oracle.map(\.record))
    }
}
