import Foundation
import OvlCore
import OvlExplorer

/// Issue 12's figures at kernel scale: `ovl analyze` of a kernel with its boot and workload
/// traces beside `objdump -d` of the same image, and the explorer's keypress-to-redraw after
/// a γ change and after pinning one function. On `Samples/linux/run.sh`'s outputs when they
/// exist (the full traces), else on the committed CI extract (400,000 translation blocks a
/// phase), or on the directory given (`ovl-bench kernel DIR`: DIR/vmlinux, DIR/boot.trace,
/// DIR/workload.trace).
func kernelBenchmarks(_ given: String?) {
    let samples = samplesDirectory()
    let linux = (samples as NSString).deletingLastPathComponent + "/linux"
    let fm = FileManager.default
    var dir = given ?? linux + "/out"
    var label = given == nil ? "Samples/linux/out (run.sh's full traces)" : dir
    if given == nil && !(fm.fileExists(atPath: dir + "/vmlinux") && fm.fileExists(atPath: dir + "/workload.trace")) {
        // The extract: unpack its vmlinux next to the traces in a temporary folder.
        let tmp = NSTemporaryDirectory() + "ovl-bench-kernel-\(getpid())"
        try? fm.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["sh", "-c", "xz -dc '\(linux)/extract/vmlinux.xz' > '\(tmp)/vmlinux'"]
        try? p.run()
        p.waitUntilExit()
        for t in ["boot.trace", "workload.trace"] { try? fm.copyItem(atPath: linux + "/extract/" + t, toPath: tmp + "/" + t) }
        dir = tmp
        label = "the CI extract (Samples/linux/extract, 400,000 blocks a phase)"
    }
    let image = dir + "/vmlinux"
    let profiles = [dir + "/boot.trace", dir + "/workload.trace"]
    let configPath = linux + "/linux.toml"
    guard fm.fileExists(atPath: image), let config = try? Config.load(path: configPath) else {
        print("kernel: no vmlinux in \(dir)")
        return
    }
    print("== kernel (issue 12): \(label)")

    // 1. ovl analyze (the command, as users run it) beside objdump -d of the same image.
    let ovl = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("ovl").path
    let objdump = commandMilliseconds("/usr/bin/objdump", ["-d", image], repeat: 2)
    if fm.isExecutableFile(atPath: ovl) {
        let args = ["analyze", image] + profiles.flatMap { ["--profile", $0] } + ["--config", configPath]
        let analyze = commandMilliseconds(ovl, args, repeat: 2)
        let noProfile = commandMilliseconds(ovl, ["analyze", image, "--config", configPath], repeat: 2)
        print(String(format: "ovl analyze vmlinux + 2 traces %.0f ms (without traces %.0f ms) | objdump -d %.0f ms | ratio %.2f (aim <= 0.5)",
                     analyze, noProfile, objdump, analyze / objdump))
    }

    // 2. In-process breakdown of opening a session.
    var t = DispatchTime.now().uptimeNanoseconds
    func lap() -> Double {
        let now = DispatchTime.now().uptimeNanoseconds
        defer { t = now }
        return Double(now - t) / 1e6
    }
    let program = try! Program.load(path: image, options: ProgramOptions(excludedSections: config.excludeSections))
    let decodeMs = lap()
    let chains = Chains(program: program, granularity: config.granularity)
    let chainsMs = lap()
    let loaded = profiles.map { try! ProfileLoader.load(path: $0, program: program, chains: chains, showProgress: false) }
    let profileMs = lap()
    let session = Session(program: program, profiles: loaded, config: config, chains: chains)
    let graphMs = lap()
    let events = loaded.reduce(0) { $0 + $1.chainRuns.count }
    print(String(format: "  open: decode %.0f ms, chains %.0f ms, 2 traces (%@ chain runs) %.0f ms, graph and core set %.0f ms",
                 decodeMs, chainsMs, Describe.count(events) as NSString, profileMs, graphMs))
    print("  \(program.functions.count) functions, \(chains.count) chains, \(session.graph.edgeCount) edges")

    // 3. Re-clustering from scratch, the coalescer alone.
    var cfg = config
    let cluster = milliseconds(repeat: 7) {
        cfg.gamma = cfg.gamma == 4 ? 5 : 4
        try! session.update(cfg)
        _ = session.cluster(recordEvents: true)
    }
    print(String(format: "  coalescer from scratch (Figure 2, events recorded): %.1f ms", cluster))

    // 4. The explorer: keypress to redrawn screen after `+` and after pinning a function.
    let engine = ExplorerEngine(session: session)
    kernelExplorer(engine, config: config)
    if given == nil && dir.hasPrefix(NSTemporaryDirectory()) { try? fm.removeItem(atPath: dir) }
}

func kernelExplorer(_ engine: ExplorerEngine, config: Config) {
    func stats(_ v: [Double]) -> String {
        let s = v.sorted()
        return String(format: "median %.1f ms, p90 %.1f ms, max %.1f ms", s[s.count / 2], s[min(s.count - 1, s.count * 9 / 10)], s.last!)
    }
    var start = config
    start.gamma = 0
    let d = ExplorerDriver(engine: engine, config: start, width: 120, height: 40, defersBackgroundWork: true)
    d.type("1")
    d.discardDeferred()
    var total: [Double] = [], header: [Double] = []
    for _ in 0..<15 {
        let t0 = DispatchTime.now().uptimeNanoseconds
        d.press(.char("+"))
        _ = d.render()
        total.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        header.append(d.state.analysis!.milliseconds)
        d.discardDeferred()
    }
    print("  explorer γ change (+), the header's figure: \(stats(header)) (aim <= 16)")
    print("  explorer γ change (+), keypress to redrawn screen: \(stats(total)) (aim <= 16)")
    // Pinning: the partition list sorted by heat (the default); pin the function under the
    // cursor, move down, pin the next; each a configuration never analysed before.
    var pin: [Double] = [], pinHeader: [Double] = []
    for _ in 0..<15 {
        d.press(.down)
        d.discardDeferred()
        let t0 = DispatchTime.now().uptimeNanoseconds
        d.press(.char(" "))
        _ = d.render()
        pin.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        pinHeader.append(d.state.analysis!.milliseconds)
        d.discardDeferred()
    }
    print("  explorer pin one function, the header's figure: \(stats(pinHeader))")
    print("  explorer pin one function, keypress to redrawn screen: \(stats(pin)) (aim <= 16)")
}
