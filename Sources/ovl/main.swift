import ArgumentParser
import OvlCore

struct Ovl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ovl",
        abstract: "Overlay a static x86-64 program or a Linux kernel: keep hot code resident, load cold clusters on demand.",
        version: ovlVersion,
        subcommands: [Explore.self, Analyze.self, Sweep.self, OptimizeCommand.self, Record.self, Convert.self, Export.self, Rewrite.self, KernelPinsCommand.self])
}

/// `ovl --version`.
let ovlVersion = "ovl 0.13.0 (Swift \(swiftVersion))"

var swiftVersion: String {
    #if compiler(>=6.3)
    "6.3"
    #elseif compiler(>=6.2)
    "6.2"
    #elseif compiler(>=6.1)
    "6.1"
    #else
    "6.0"
    #endif
}

Ovl.main()
