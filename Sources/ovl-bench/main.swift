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
    for n in [125_000, 250_000, 500_000, 1_000_000] {
        let (g, core) = syntheticGraph(chains: n, seed: 1)
        let ms = milliseconds(repeat: 1) { _ = Coalescer.run(g, CoalescerParameters(gamma: 4, bufferSize: 2048, coreChains: core)) }
        print("synthetic coalescing, \(n) chains: \(Int(ms)) ms")
    }
}
