import Foundation
import OvlCore

// Benchmarks for the figures the issues ask for. Run from the repository root:
//   swift run -c release ovl-bench [engine|explorer|rewrite|optimize|kernel [DIR]|synthetic]
// Every figure that has a baseline is printed as a ratio to it, measured in the same run.
let which = CommandLine.arguments.dropFirst().first ?? "all"
print("ovl-bench on \(ProcessInfo.processInfo.hostName): \(ProcessInfo.processInfo.activeProcessorCount) cores")
if which == "all" || which == "engine" { engineBenchmarks() }
if which == "all" || which == "explorer" { explorerBenchmarks() }
if which == "all" || which == "rewrite" { rewriteBenchmarks() }
if which == "all" || which == "optimize" { optimizeBenchmarks() }
if which == "kernel" { kernelBenchmarks(CommandLine.arguments.dropFirst(2).first) }
if which == "synthetic" {
    // For `perf record`: OVL_BENCH_LOOP=synthetic re-clusters the 1,000,000-chain graph
    // from scratch eight times, =synthetic-gamma after γ edits.
    if let loop = ProcessInfo.processInfo.environment["OVL_BENCH_LOOP"], loop.hasPrefix("synthetic") {
        let (g, core) = syntheticGraph(chains: 1_000_000, seed: 1)
        var gamma = 4.0
        var last: Clustering? = nil
        let times = runTimes(repeat: 8) {
            if loop == "synthetic" { g.discardPrepared() } else { gamma = gamma == 4 ? 5 : 4 }
            last = Coalescer.run(g, CoalescerParameters(gamma: gamma, bufferSize: 2048, coreChains: core, recordEvents: true))
        }
        // A digest of the last clustering, to compare builds by.
        var digest: UInt64 = 14_695_981_039_346_656_037
        for k in last!.chainCluster { digest = (digest ^ UInt64(UInt32(bitPattern: k))) &* 1_099_511_628_211 }
        for e in last!.events { digest = (digest ^ UInt64(UInt32(bitPattern: e.a)) ^ UInt64(UInt32(bitPattern: e.b)) << 32) &* 1_099_511_628_211 }
        print("synthetic loop \(loop): best \(Int(times[0])) ms, median \(Int(times[4])) ms, worst \(Int(times[7])) ms (the first includes faulting its memory in); \(last!.clusterCount) clusters, \(last!.events.count) events, digest \(String(digest, radix: 16))")
        exit(0)
    }
    for n in [125_000, 250_000, 500_000, 1_000_000] {
        let (g, core) = syntheticGraph(chains: n, seed: 1)
        let ms = milliseconds(repeat: 1) { _ = Coalescer.run(g, CoalescerParameters(gamma: 4, bufferSize: 2048, coreChains: core)) }
        print("synthetic coalescing, \(n) chains: \(Int(ms)) ms")
    }
}
