import ArgumentParser
import OvlCore

struct Ovl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ovl",
        abstract: "Overlay a static x86-64 program or a Linux kernel: keep hot code resident, load cold clusters on demand.",
        subcommands: [Explore.self, Analyze.self, Sweep.self, OptimizeCommand.self, Record.self, Convert.self, Export.self, Rewrite.self, KernelPinsCommand.self])
}

Ovl.main()
