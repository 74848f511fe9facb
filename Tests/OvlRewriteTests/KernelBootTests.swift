import Foundation
import OvlTestSupport
import Testing

/// A rewritten Linux kernel boots: `Samples/linux/run.sh` builds Debian's linux-source-6.1
/// (tinyconfig + config.fragment) and traces its boot and workload under QEMU; then
/// `Samples/linux/overlay.sh --quick` rewrites the vmlinux at the default configuration
/// (linux.toml) and the stress one (γ = 0, a 2 KB buffer), boots each under
/// qemu-system-x86_64 (TCG, untraced), and fails unless the workload's console output is
/// the original kernel's line for line and the kernel printed its load counters. This
/// test checks those outcomes once more from the files the scripts leave, against the
/// original kernel's own run — nothing here shares code with the rewriter.
///
/// It takes 15–20 minutes on two cores (about 4 for the kernel build, which is cached in
/// `~/.cache/ovl/linux` across runs, or `OVL_LINUX_OUT`), so outside CI it runs only when
/// `OVL_KERNEL_BOOT=1`; in CI (`CI` set, as `.ci/run` does) it always runs.
@Suite(.serialized) struct KernelBootTests {
    static let enabled: Bool = Tools.ci || ProcessInfo.processInfo.environment["OVL_KERNEL_BOOT"] == "1"

    static var outDir: String {
        let env = ProcessInfo.processInfo.environment
        if let d = env["OVL_LINUX_OUT"], !d.isEmpty { return d }
        return (env["XDG_CACHE_HOME"] ?? (NSHomeDirectory() + "/.cache")) + "/ovl/linux"
    }

    func run(_ script: String, _ args: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [TestPaths.root + "/Samples/linux/" + script] + args
        var env = ProcessInfo.processInfo.environment
        env["OVL_LINUX_OUT"] = Self.outDir
        env["OVL"] = TestPaths.ovl
        p.environment = env
        let log = Self.outDir + "/\(script).test.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        p.standardOutput = h
        p.standardError = h
        try p.run()
        p.waitUntilExit()
        try h.close()
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        return (p.terminationStatus, String(text.suffix(4000)))
    }

    /// The workload's console lines (its output), without its run time.
    func workloadOutput(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: "\r", with: "")
            .split(separator: "\n").map(String.init)
            .filter { $0.hasPrefix("ovl-init:") && !$0.contains("workload done in") }
    }

    @Test(.enabled(if: enabled, "builds and boots a Linux kernel (15–20 min): set OVL_KERNEL_BOOT=1 to run it outside CI"),
          Tools.needed("qemu-system-x86_64", "make", "gcc", "musl-gcc", "flex", "bison", "bc", "cpio"))
    func rewrittenKernelBootsAndRunsTheWorkloadAtTheDefaultAndStressConfigurations() throws {
        try FileManager.default.createDirectory(atPath: Self.outDir, withIntermediateDirectories: true)
        let traced = try run("run.sh", ["--until", "boot"])
        try #require(traced.status == 0, "run.sh --until boot failed:\n\(traced.output)")
        let booted = try run("overlay.sh", ["--quick"])
        try #require(booted.status == 0, "overlay.sh --quick failed:\n\(booted.output)")

        let original = try workloadOutput(Self.outDir + "/serial-pvh.log")
        #expect(original.contains("ovl-init: boot done, workload begins"))
        #expect(original.count >= 1)
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.outDir + "/overlay.json"))
        let rows = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
        for name in ["default", "stress"] {
            let serial = Self.outDir + "/serial-\(name).log"
            #expect(try workloadOutput(serial) == original, "\(name): the workload's output differs from the original kernel's")
            let console = try String(contentsOfFile: serial, encoding: .utf8)
            #expect(console.contains("ovl-init: workload done in"), "\(name): the workload did not finish")
            #expect(console.contains("reboot: Restarting system"), "\(name): the kernel did not restart")
            let row = try #require(rows.first { $0["name"] as? String == name })
            let bootLoads = try #require(row["kernelBootLoads"] as? Int, "\(name): no counters at the phase mark")
            let workLoads = try #require(row["kernelWorkloadLoads"] as? Int, "\(name): no counters at restart")
            #expect(bootLoads > 0 && workLoads > 0, "\(name): the kernel loaded no cluster (boot \(bootLoads), workload \(workLoads))")
            let clusters = try #require(row["clusters"] as? Int)
            #expect(clusters > 0)
            // The resident kernel is smaller than the original's code.
            let total = try #require(row["totalMemoryBytes"] as? Int), code = try #require(row["originalCodeBytes"] as? Int)
            #expect(total < code, "\(name): \(total) B in memory against \(code) B of code")
        }
    }
}
