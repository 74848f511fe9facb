import Foundation
import OvlCore

/// The rewriter's figures, measured on written images: per sample (first manifest input,
/// profiled on itself), resident code and total memory against the original code size
/// (Table 1 measured, not estimated), and wall time of the rewritten program against the
/// original in the same run, at the default configuration and at the stress one (γ = 0,
/// the smallest buffer that holds the largest chain). Memory backend.
func rewriteBenchmarks() {
    let samples = samplesDirectory()
    let manifest = (try? String(contentsOfFile: samples + "/../manifest.tsv", encoding: .utf8)) ?? ""
    var firstRun: [(String, String, [String])] = []
    for line in manifest.split(separator: "\n") where !line.hasPrefix("#") {
        let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        guard f.count >= 5, !firstRun.contains(where: { $0.0 == f[0] }) else { continue }
        firstRun.append((f[0], f[3], f[4].split(separator: " ").map(String.init)))
    }
    let dir = NSTemporaryDirectory() + "ovl-rewrite-bench-\(getpid())"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    print("\nrewriter: measured on the written images (memory store); times are best of 5")
    print("program         code B  resident B  total B  reduction  | default: time ratio  | stress: buffer B  resident B  time ratio")
    var ratios: [Double] = [], stressRatios: [Double] = []
    for (name, input, args) in firstRun {
        let image = samples + "/" + name
        let trace = "\(samples)/\(name).\(input).trace"
        guard let s = try? Session.open(image: image, profiles: [trace], config: Config(), showProgress: false) else { continue }
        func write(_ tag: String) -> (RewriteResult, String)? {
            let c = s.cluster(recordEvents: false)
            guard let r = try? Rewriter.rewrite(session: s, clustering: c, storage: .memory) else { return nil }
            let path = "\(dir)/\(name).\(tag)"
            FileManager.default.createFile(atPath: path, contents: Data(r.image), attributes: [.posixPermissions: 0o755])
            return (r, path)
        }
        guard let (r, path) = write("default") else { print("\(name): rewrite failed"); continue }
        var cfg = s.config
        cfg.gamma = 0
        cfg.bufferSize = Rewriter.smallestBuffer(s)
        try? s.update(cfg)
        guard let (rs, stressPath) = write("stress") else { print("\(name): stress rewrite failed"); continue }
        let original = commandMilliseconds(image, args, repeat: 5)
        let rewritten = commandMilliseconds(path, args, repeat: 5)
        let stressed = commandMilliseconds(stressPath, args, repeat: 5)
        let ratio = rewritten / original, stressRatio = stressed / original
        ratios.append(ratio); stressRatios.append(stressRatio)
        let reduction = 100 * (1 - Double(r.totalMemoryBytes) / Double(r.originalTextBytes))
        print(String(format: "%-14@ %7d %11d %8d %9.1f%%  | %8.2fx (%.1f ms)   | %9d %11d %8.2fx",
                     name as NSString, r.originalTextBytes, r.residentCodeBytes, r.totalMemoryBytes, reduction,
                     ratio, original, cfg.bufferSize, rs.residentCodeBytes, stressRatio))
    }
    func geomean(_ a: [Double]) -> Double { a.isEmpty ? .nan : exp(a.map { log($0) }.reduce(0, +) / Double(a.count)) }
    print(String(format: "geometric mean time ratio: default %.2fx, stress %.2fx (process start-up included; runs are milliseconds long)",
                 geomean(ratios), geomean(stressRatios)))
}
