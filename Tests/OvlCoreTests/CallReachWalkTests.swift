import Foundation
import OvlTestSupport
import Testing
@testable import OvlCore

/// `CallReach` condenses the block graph once per session and joins units over its
/// components for each layout. The oracle here walks the graph from every block on its
/// own (breadth first, no components) and collects the units it meets: a call to a block
/// keeps cluster K in the buffer exactly when everything reachable is resident or in K and
/// nothing on the way is a transfer nobody can follow.
@Suite struct CallReachWalkTests {
    /// What a call to `start` may enter, found by walking: 0 resident only, k a single
    /// cluster k, -1 anything (or code that cannot be followed).
    static func walk(_ p: Program, from start: Int, unit: (Int) -> Int) -> Int {
        var seen = Set<Int>([start])
        var queue = [start]
        var units = Set<Int>()
        var i = 0
        while i < queue.count {
            let b = queue[i]
            i += 1
            let f = p.functions[Int(p.blockFunction[b])]
            if CallReach.returnsTwice.contains(f.name) || f.aliases.contains(where: CallReach.returnsTwice.contains) { return -1 }
            let u = unit(b)
            if u != 0 { units.insert(u) }
            var next: [Int] = []
            if p.blockContinues[b] {
                guard let nb = p.block(startingAt: p.blockStart[b] + UInt64(p.blockSize[b])) else { return -1 }
                next.append(nb)
            }
            switch p.blockKind[b] {
            case .jump, .conditionalJump, .call:
                guard p.blockTarget[b] >= 0 else { return -1 }
                next.append(Int(p.blockTarget[b]))
            case .indirectJump:
                guard let ts = p.jumpTableTargets[Int32(b)] else { return -1 }
                next += ts.map(Int.init)
            case .indirectCall, .far:
                return -1
            case .fallThrough, .ret, .stop:
                break
            }
            for n in next where seen.insert(n).inserted { queue.append(n) }
        }
        return units.isEmpty ? 0 : units.count == 1 ? units.first! : -1
    }

    @Test(arguments: ["crc", "fnptr", "jumptab", "longjmp", "sighandler"])
    func condensedReachEqualsAWalkFromEveryCallee(_ name: String) throws {
        let image = Fixture.samples + "/" + name
        let session = try Session.open(image: image, profiles: Fixture.traces(of: image), config: Config(), showProgress: false)
        let p = session.program
        let graph = CallReach.Graph(program: p)
        // Two clusterings: the default one, and one with a small buffer (many clusters).
        var small = Config()
        small.bufferSize = 384
        for config in [Config(), small] {
            try session.update(config)
            let c = session.cluster(recordEvents: false)
            let unit = { (b: Int) -> Int in Int(c.chainCluster[Int(session.chains.blockChain[b])]) + 1 }
            let reach = CallReach(graph, unit: unit)
            let callees = Set((0..<p.blockCount).filter { p.blockKind[$0] == .call && p.blockTarget[$0] >= 0 }.map { Int(p.blockTarget[$0]) })
            #expect(callees.count > 10, "\(name): too few call targets to test anything")
            var staying = 0
            for t in callees.sorted() {
                let walked = CallReachWalkTests.walk(p, from: t, unit: unit)
                for k in 1...max(1, c.clusterCount) {
                    let expected = walked == 0 || walked == k
                    if expected { staying += 1 }
                    #expect(reach.staysIn(k, callingBlock: t) == expected,
                            "\(name), buffer \(config.bufferSize): a call from cluster \(k) to block \(t) (walk found \(walked))")
                }
            }
            #expect(staying > 0, "\(name): no call ever stays in its cluster, so the test checks only one answer")
        }
    }
}
