import ArgumentParser
import Foundation
import OvlCore

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a clustering out for other tools: its configuration (TOML), its cluster graph (DOT), a GNU ld script.",
        discussion: """
            The same exports as the explorer's E menu, for scripts. The TOML reproduces the clustering \
            with `ovl analyze --config`; the DOT file holds the whole cluster graph after coalescing; \
            the ld script (function granularity only) has one OVERLAY section per cluster, naming \
            -ffunction-sections input sections (.text.NAME), for use as `-Wl,-T,FILE` beside the default script.
            """)

    @OptionGroup var options: ImageOptions

    @Option(help: ArgumentHelp("Write the configuration as TOML.", valueName: "file"), completion: .file(extensions: ["toml"]))
    var toml: String?

    @Option(help: ArgumentHelp("Write the cluster graph as Graphviz DOT.", valueName: "file"), completion: .file(extensions: ["dot"]))
    var dot: String?

    @Option(name: .customLong("ld-script"), help: ArgumentHelp("Write a GNU ld script with one OVERLAY section per cluster (needs --granularity function).", valueName: "file"), completion: .file())
    var ldScript: String?

    func validate() throws {
        if toml == nil && dot == nil && ldScript == nil {
            throw ValidationError("nothing to export: give --toml, --dot or --ld-script")
        }
    }

    func run() throws {
        try guarded {
            let outputs = [("--toml", toml), ("--dot", dot), ("--ld-script", ldScript)].compactMap { o, p in p.map { (option: o, path: $0) } }
            try OutputFile.check(outputs: outputs, inputs: options.inputFiles)
            let cfg = try options.resolvedConfig()
            if ldScript != nil && cfg.granularity != .function {
                throw OvlError("--ld-script lists whole functions, so it needs --granularity function (or granularity = \"function\" in the configuration)")
            }
            let s = try options.openSession()
            let c = s.cluster(recordEvents: false)
            let row = s.statistics(c)
            let inputs = options.inputFiles.map(\.path)
            var clusterLoads = [UInt64](repeating: 0, count: c.clusterCount)
            if dot != nil || ldScript != nil {
                let model = CostModel(session: s)
                for i in s.profiles.indices {
                    let pc = model.cost(phase: i, c, withPaging: false)
                    for k in 0..<min(clusterLoads.count, pc.clusterLoads.count) { clusterLoads[k] += pc.clusterLoads[k] }
                }
            }
            var wrote: [String] = []
            if let toml {
                try writeAtomically(Exports.toml(session: s, config: s.config, row: row), to: toml, inputs: inputs)
                wrote.append("configuration \(toml)")
            }
            if let dot {
                try writeAtomically(Exports.dot(session: s, clustering: c, config: s.config, clusterLoads: clusterLoads), to: dot, inputs: inputs)
                wrote.append("cluster graph \(dot)")
            }
            if let ldScript {
                try writeAtomically(try Exports.linkerScript(session: s, clustering: c, config: s.config, clusterLoads: clusterLoads), to: ldScript, inputs: inputs)
                wrote.append("ld script \(ldScript)")
            }
            FileHandle.standardError.write(Data("ovl: \(Describe.count(row.clusters, "cluster")), total memory \(Describe.count(row.totalMemory)) B (\(Describe.percent(row.reductionPercent)) less); wrote \(wrote.joined(separator: ", "))\n".utf8))
        }
    }
}
