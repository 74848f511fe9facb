import Foundation
import OvlCore

/// The rewriter's figures, measured on written images (memory store), per sample program
/// profiled on its first manifest input:
///
/// - resident code and total memory against the original code size (Table 1 measured on
///   the image, not estimated);
/// - wall time of the rewritten program against the original, run alternately in the same
///   loop (best of 7 each), at the default configuration on the manifest input and on a
///   longer input where one is listed (so process start-up does not hide the steady
///   state), and at the stress configuration (γ = 0, the smallest buffer that holds the
///   largest chain) on the manifest input;
/// - the loads the manager counted in each run, and from the long run the time each load
///   costs on this machine: (rewritten − original) / loads.
func rewriteBenchmarks() {
    let samples = samplesDirectory()
    let manifest = (try? String(contentsOfFile: samples + "/../manifest.tsv", encoding: .utf8)) ?? ""
    var firstRun: [(String, String, [String])] = []
    for line in manifest.split(separator: "\n") where !line.hasPrefix("#") {
        let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        guard f.count >= 5, !firstRun.contains(where: { $0.0 == f[0] }) else { continue }
        firstRun.append((f[0], f[3], f[4].split(separator: " ").map(String.init)))
    }
    // Inputs that run for milliseconds rather than microseconds (not profiled).
    let longInputs: [String: [String]] = [
        "crc": ["4096"], "crc-glibc": ["4096"], "dijkstra": ["2000", "42", "150"], "sortcb": ["2000", "name"],
        "interp": ["primes", "30000"], "interp-glibc": ["primes", "30000"], "strsearch": ["alarm", "400000"],
        "fixdsp": ["65536", "fft"], "fnptr": ["idnr", "50000", "41be41bf"], "jumptab": ["30000", "0"],
        "deepchain": ["30", "20000"],
    ]
    let dir = NSTemporaryDirectory() + "ovl-rewrite-bench-\(getpid())"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let stats = dir + "/stats.json"
    func loads(_ image: String, _ args: [String]) -> UInt64 {
        try? FileManager.default.removeItem(atPath: stats)
        _ = spawnMilliseconds(image, args, env: ["OVL_STATS=" + stats])
        guard let d = FileManager.default.contents(atPath: stats),
              let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any] else { return 0 }
        return (o["loads"] as? NSNumber)?.uint64Value ?? 0
    }
    /// Best-of-n wall times of each command, run in turn so that load on the machine
    /// falls on all of them alike.
    func race(_ cmds: [(String, [String])], repeat n: Int = 7) -> [Double] {
        var best = [Double](repeating: .infinity, count: cmds.count)
        for _ in 0..<n { for (i, c) in cmds.enumerated() { best[i] = min(best[i], spawnMilliseconds(c.0, c.1)) } }
        return best
    }

    func pad(_ s: String, _ n: Int, left: Bool = false) -> String {
        s.count >= n ? s : (left ? s + String(repeating: " ", count: n - s.count) : String(repeating: " ", count: n - s.count) + s)
    }
    print("\nrewriter: measured on the written images (memory store, \(Config().bufferSize) B buffer); wall times best of 7 (long inputs 11), run alternately")
    print(pad("program", 14, left: true) + pad("code B", 9) + pad("resident B", 12) + pad("total B", 9) + pad("reduction", 11)
          + " | default: loads    time" + " | long input: loads    time (original)  µs/load" + " | stress: buffer B  loads    time")
    var ratios: [Double] = [], longRatios: [Double] = [], stressRatios: [Double] = []
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
        guard let (_, stressPath) = write("stress") else { print("\(name): stress rewrite failed"); continue }

        let t = race([(image, args), (path, args), (stressPath, args)])
        let ratio = t[1] / t[0], stressRatio = t[2] / t[0]
        ratios.append(ratio); stressRatios.append(stressRatio)
        let reduction = 100 * (1 - Double(r.totalMemoryBytes) / Double(r.originalTextBytes))
        var line = pad(name, 14, left: true) + pad("\(r.originalTextBytes)", 9) + pad("\(r.residentCodeBytes)", 12)
            + pad("\(r.totalMemoryBytes)", 9) + pad(String(format: "%.1f%%", reduction), 11)
        line += " | " + pad("\(loads(path, args))", 14) + pad(String(format: "%.2fx", ratio), 8)
        if let la = longInputs[name] {
            let lt = race([(image, la), (path, la)], repeat: 11)
            let n = loads(path, la)
            let lr = lt[1] / lt[0]
            longRatios.append(lr)
            line += " | " + pad("\(n)", 17) + pad(String(format: "%.2fx", lr), 8) + pad(String(format: "(%.1f ms)", lt[0]), 11)
                + pad(n > 0 ? String(format: "%.1f", max(0, lt[1] - lt[0]) * 1000 / Double(n)) : "-", 9)
        } else {
            line += " | " + String(repeating: " ", count: 45)
        }
        line += " | " + pad("\(cfg.bufferSize)", 16) + pad("\(loads(stressPath, args))", 7) + pad(String(format: "%.2fx", stressRatio), 8)
        print(line)
    }
    func geomean(_ a: [Double]) -> Double { a.isEmpty ? .nan : exp(a.map { log($0) }.reduce(0, +) / Double(a.count)) }
    print(String(format: "geometric mean time ratio: default %.2fx (manifest inputs, start-up included), %.2fx (long inputs), stress %.2fx",
                 geomean(ratios), geomean(longRatios), geomean(stressRatios)))
}

/// Wall time of one run of a command, output discarded (posix_spawn: no Foundation
/// Process overhead, which would dilute the ratios of sub-millisecond programs).
func spawnMilliseconds(_ exe: String, _ args: [String], env: [String] = []) -> Double {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let argv = ([exe] + args).map { strdup($0) } + [nil]
    let envp = env.map { strdup($0) } + [nil]
    defer { for p in argv + envp { free(p) } }
    var pid: pid_t = 0
    let start = DispatchTime.now().uptimeNanoseconds
    guard posix_spawn(&pid, exe, &actions, nil, argv, envp) == 0 else { return .nan }
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
}
