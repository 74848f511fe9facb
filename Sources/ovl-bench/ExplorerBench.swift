import Foundation
import OvlCore

func explorerBenchmarks() {
    let root = FileManager.default.currentDirectoryPath
    for prog in ["sortcb-glibc", "crc-glibc", "interp-glibc", "sortcb"] {
        let img = root + "/Samples/bin/" + prog
        let traces = ((try? FileManager.default.contentsOfDirectory(atPath: root + "/Samples/bin")) ?? []).filter { $0.hasPrefix(prog + ".") && $0.hasSuffix(".trace") }.map { root + "/Samples/bin/" + $0 }
        var t0 = Date()
        let s = try! Session.open(image: img, profiles: traces, config: Config(), showProgress: false)
        print(prog, "open", Date().timeIntervalSince(t0) * 1000, "functions", s.program.functions.count, "chains", s.chains.count, "edges", s.graph.edgeCount)
        let m = CostModel(session: s)
        for _ in 0..<3 {
            t0 = Date()
            let c = s.cluster(recordEvents: true)
            let t1 = Date()
            let costs = m.costs(c)
            let t2 = Date()
            let st = s.statistics(c)
            let t3 = Date()
            print("  cluster", t1.timeIntervalSince(t0) * 1000, "costs", t2.timeIntervalSince(t1) * 1000, "stats", t3.timeIntervalSince(t2) * 1000, "events", c.events.count, "clusters", c.clusterCount, costs.map(\.loads), st.reductionPercent)
        }
        t0 = Date()
        for p in 0..<s.profiles.count { _ = m.cost(phase: p, s.cluster(recordEvents: false), withPaging: false) }
        print("  nopaging cluster+cost", Date().timeIntervalSince(t0) * 1000)
    }
}
