import Foundation
import OvlCore

/// The figures of the "beat demand paging" issue: for every sample (trained on its first
/// manifest input, judged also on the others) and for the Linux run when
/// `Samples/linux/out` holds it, Figure 2 at its defaults and the optimiser's frontier,
/// each beside paging of the original layout in the same total memory.
func optimizeBenchmarks() {
    print("\n== optimize: loads against paging in the same total memory")
    let manifest = (try? String(contentsOfFile: "Samples/manifest.tsv", encoding: .utf8)) ?? ""
    var inputs: [(String, [String])] = []
    for line in manifest.split(separator: "\n") where !line.hasPrefix("#") {
        let f = line.split(separator: "\t").map(String.init)
        guard f.count >= 4 else { continue }
        if let i = inputs.firstIndex(where: { $0.0 == f[0] }) { inputs[i].1.append(f[3]) } else { inputs.append((f[0], [f[3]])) }
    }
    func ratio(_ loads: UInt64, _ paging: UInt64) -> String { AnalysisReport.pagingComparison(loads: loads, paging: paging) }
    for (binary, names) in inputs {
        let image = "Samples/bin/\(binary)"
        guard let s = try? Session.open(image: image, profiles: ["\(image).\(names[0]).trace"], config: Config(), showProgress: false) else { continue }
        let held = names.dropFirst().compactMap { try? ProfileLoader.load(path: "\(image).\($0).trace", program: s.program, chains: s.chains, showProgress: false) }
        let fig2 = s.cluster(recordEvents: false)
        let row = s.statistics(fig2)
        let cost = CostModel(session: s).costs(fig2)[0]
        let t0 = DispatchTime.now()
        let opt = Optimizer(session: s, evaluate: held)
        let front = Optimizer.frontier(opt.finish(Optimizer.frontier(opt.search())))
        let sec = Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e9
        var line = "\(binary): Figure 2 \(row.totalMemory) B (\(Describe.percent(row.reductionPercent))) \(cost.loads) loads, paging \(cost.paging?.loads ?? 0): \(ratio(cost.loads, cost.paging?.loads ?? 0))"
        let good = front.filter { p in p.phases[0].loads * 20 <= p.phases[0].pagingLoads }
        if let best = good.max(by: { $0.reductionPercent < $1.reductionPercent }) {
            let f = best.phases[0]
            line += " | ≥20× at \(best.totalMemory) B (\(Describe.percent(best.reductionPercent))): \(f.loads) loads, paging \(f.pagingLoads), Belady \(f.beladyLoads)"
            line += best.evaluations.map { ", held out \($0.phase.split(separator: ".").dropFirst().first ?? ""): \($0.loads) vs \($0.pagingLoads)" }.joined()
        } else {
            line += " | no frontier point at 20× (paging needs \(front.map { $0.phases[0].pagingLoads }.max() ?? 0) loads at most)"
        }
        if let mid = front.filter({ $0.reductionPercent >= 40 }).min(by: { $0.cost < $1.cost }) {
            line += " | cheapest at ≥40%: \(mid.totalMemory) B, \(mid.phases[0].loads) loads vs paging \(mid.phases[0].pagingLoads)"
        }
        print(line + String(format: " [%.1f s]", sec))
    }
    // The Linux run, when run.sh has produced it.
    let out = "Samples/linux/out"
    guard FileManager.default.fileExists(atPath: out + "/workload.trace"),
          let cfg = try? Config.load(path: "Samples/linux/linux.toml"),
          let s = try? Session.open(image: out + "/vmlinux", profiles: [out + "/boot.trace", out + "/workload.trace"], config: cfg, showProgress: false) else {
        print("linux: Samples/linux/out has no traces (Samples/linux/run.sh makes them)")
        return
    }
    let held = [out + "/alt-workload.trace"].filter { FileManager.default.fileExists(atPath: $0) }
        .compactMap { try? ProfileLoader.load(path: $0, program: s.program, chains: s.chains, showProgress: false) }
    let t0 = DispatchTime.now()
    let opt = Optimizer(session: s, evaluate: held)
    opt.costPhases = ["workload.trace"]
    let front = Optimizer.frontier(opt.finish(Optimizer.frontier(opt.search())))
    let sec = Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e9
    print(String(format: "linux: frontier of %d points in %.1f s (boot + workload traces, cost on the workload)", front.count, sec))
    for p in front where p.reductionPercent >= 70 {
        let w = p.phases[1], b = p.phases[0]
        var line = String(format: "  %.1f%% (%d B~, %d × %d B, budget %d): workload %d loads %.4f s vs paging %d (%@); boot %d vs %d (%@)",
                          p.reductionPercent, p.totalMemory, p.buffers, p.bufferSize, p.residentBudget, w.loads, w.estimatedCostSeconds,
                          w.pagingLoads, ratio(w.loads, w.pagingLoads), b.loads, b.pagingLoads, ratio(b.loads, b.pagingLoads))
        for e in p.evaluations { line += String(format: "; held out %@: %d loads %.4f s vs paging %d", e.phase, e.loads, e.estimatedCostSeconds, e.pagingLoads) }
        if let f2 = p.figure2Cost { line += String(format: "; Figure 2 at no more memory %.2f s", f2) }
        print(line)
    }
}
