import ArgumentParser
import Foundation
import OvlCore

struct Analyze: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Cluster an image's code and print one row of the paper's Table 1.")

    @OptionGroup var options: ImageOptions

    @Flag(help: "Print JSON (the row's fields, the cluster list, the profiles) instead of text.")
    var json = false

    @Flag(help: "List every cluster and its members.")
    var clusters = false

    @Option(name: .customLong("evaluate"), help: ArgumentHelp("A held-out trace to replay against the clustering made from --profile (repeatable).", valueName: "trace"), completion: .file())
    var evaluate: [String] = []

    func run() throws {
        try guarded {
            let s = try options.openSession()
            let start = DispatchTime.now()
            let c = s.cluster(recordEvents: false)
            let ms = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6
            let model = CostModel(session: s)
            let held = try evaluate.map { try ProfileLoader.load(path: $0, program: s.program, chains: s.chains, showProgress: !options.noProgress && Progress.stderrIsTerminal) }
            let report = AnalysisReport(session: s, clustering: c, milliseconds: ms, phases: model.costs(c), evaluations: model.evaluate(held, c))
            // The process ends after printing: tearing down the session's tables (tens of
            // megabytes of arrays on a kernel) would only delay the exit.
            _ = Unmanaged.passRetained(s)
            _ = Unmanaged.passRetained(model)
            if json {
                try printJSON(report)
                return
            }
            var out = AnalysisReport.preamble(session: s)
            out += "buffer    \(Describe.count(s.config.bufferSize)) B × \(s.config.buffers); core \(Describe.count(c.coreBaseBytes)) B may grow to \(Describe.count(c.coreLimit)) B\n\n"
            out += Describe.table(AnalysisReport.table1Header, [AnalysisReport.table1Cells(report.row)])
            out += "\nreduction against \(Describe.count(report.row.originalTextBytes)) B of code; total memory \(report.row.memory.exact ? "as ovl rewrite writes it" : report.row.memory.note) = \(report.row.memory.breakdown)\n"
            if !report.phases.isEmpty {
                out += "\nload cost (page \(s.config.pageSize) B, \(s.config.pageReadMicroseconds) µs a page; paging: original layout in \(report.phases.first?.paging?.frames ?? 0) frames of the same total memory)\n"
                out += Describe.table(AnalysisReport.table2Header, report.phases.map(AnalysisReport.table2Cells), leftAligned: [0])
                out += "without overlays: 0 loads, \(Describe.count(report.row.originalTextBytes)) B of code in memory\n"
            }
            if !report.evaluations.isEmpty {
                out += "\nheld-out phases, replayed against this clustering:\n"
                out += Describe.table(AnalysisReport.table2Header, report.evaluations.map(AnalysisReport.table2Cells), leftAligned: [0])
                for e in report.evaluations {
                    let u = e.unseenFunctions ?? []
                    if !u.isEmpty {
                        out += "\(e.phase): \(Describe.count(u.count, "function")) ran that the training profiles never saw: \(u.prefix(12).joined(separator: ", "))\(u.count > 12 ? ", …" : "")\n"
                    }
                }
            }
            if report.oversize.count > 12 {
                // A buffer smaller than most chains: one sentence, not a list of them all.
                var largest = 0
                for ch in 0..<s.chains.count { largest = max(largest, Int(s.graph.chainBytes[ch]) + Int(s.graph.chainIndirectStubBytes[ch])) }
                out += "the \(Describe.count(s.config.bufferSize)) B buffer is smaller than \(Describe.count(report.oversize.count)) of \(Describe.count(s.chains.count)) chains, which stay resident; "
                out += "the largest chain takes \(Describe.count(largest)) B with its stubs (--clusters lists them)\n"
            } else if !report.oversize.isEmpty {
                out += "kept resident, larger than the buffer: \(report.oversize.joined(separator: ", "))\n"
            }
            if clusters {
                out += "\n"
                for e in report.clusterList {
                    out += "\(e.resident ? "resident" : "cluster \(e.id)")  \(Describe.count(e.codeSize)) B  \(e.members.joined(separator: " "))\n"
                }
            }
            print(out, terminator: "")
        }
    }
}

struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Print Table 1 for a range of γ values.")

    @OptionGroup var options: ImageOptions

    @Option(help: ArgumentHelp("Comma-separated γ values in percent.", valueName: "list"))
    var gammas = "0,2,4,6,8,10"

    @Flag(help: "Print a JSON array of rows, one per γ.")
    var json = false

    @Option(help: ArgumentHelp("Write Figure 5 (estimated cost against γ, memory reduction on a second axis) as SVG.", valueName: "file"), completion: .file(extensions: ["svg"]))
    var svg: String?

    func run() throws {
        try guarded {
            let values = try gammas.split(separator: ",").map { v -> Double in
                guard let d = Double(v.trimmingCharacters(in: .whitespaces)), d.isFinite, d >= 0 else {
                    throw OvlError("--gammas must be a comma-separated list of percentages of 0 or more, not '\(gammas)'")
                }
                return d
            }
            guard !values.isEmpty else { throw OvlError("--gammas is empty") }
            if let svg { try OutputFile.check(outputs: [("--svg", svg)], inputs: options.inputFiles) }
            let s = try options.openSession()
            var rows: [SweepRow] = []
            let model = CostModel(session: s)
            let progress = Progress("sweep", total: UInt64(values.count), enabled: !options.noProgress && Progress.stderrIsTerminal)
            for (i, g) in values.enumerated() {
                var cfg = s.config
                cfg.gamma = g
                try s.update(cfg)
                let c = s.cluster(recordEvents: false)
                rows.append(SweepRow(row: s.statistics(c), phases: model.costs(c)))
                progress.update(UInt64(i + 1), unit: "γ values")
                try Interrupt.check()
            }
            progress.finish()
            if let svg {
                let title = "Load cost and memory reduction against γ: \((s.program.path as NSString).lastPathComponent), buffer \(s.config.bufferSize) B"
                try writeAtomically(Figure5.svg(rows: rows, title: title), to: svg, inputs: options.inputFiles.map(\.path))
            }
            if json {
                try printJSON(rows)
                return
            }
            var out = AnalysisReport.preamble(session: s)
            out += "buffer    \(Describe.count(s.config.bufferSize)) B × \(s.config.buffers)\n\n"
            let phaseNames = rows.first?.phases.map(\.phase) ?? []
            var header = AnalysisReport.table1Header
            for p in phaseNames { header += ["\(p) loads", "KB", "cost (s)", "paging", "vs paging"] }
            out += Describe.table(header, rows.map { r in
                AnalysisReport.table1Cells(r.row) + r.phases.flatMap { p in
                    [(p.exact ? "" : "≤") + Describe.count(p.loads), Describe.count(p.bytesLoaded / 1024), String(format: "%.4f", p.estimatedCostSeconds),
                     p.paging.map { Describe.count($0.loads) } ?? "-", AnalysisReport.pagingComparison(p)]
                }
            })
            print(out, terminator: "")
        }
    }
}

struct Record: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Run a static program under qemu-x86_64 and write its trace.",
        discussion: "The program's standard input, output and exit status pass through, so `ovl record -o t.trace -- prog args | other` works in a pipeline.")

    @Option(name: .shortAndLong, help: ArgumentHelp("The trace file to write.", valueName: "trace"), completion: .file())
    var output: String

    @Option(help: ArgumentHelp("The QEMU user-mode emulator to use.", valueName: "path"), completion: .file())
    var qemu: String?

    @Argument(parsing: .captureForPassthrough, help: "-- PROGRAM ARGS…", completion: .file())
    var command: [String] = []

    func run() throws {
        var status: Int32 = 0
        try guarded {
            var cmd = command
            if cmd.first == "--" { cmd.removeFirst() }
            guard let program = cmd.first else { throw OvlError("record needs a program: ovl record -o T -- PROGRAM ARGS…") }
            try OutputFile.check(outputs: [("-o", output)], inputs: [("the program", program)])
            let r = try Recorder.record(output: output, program: program, arguments: Array(cmd.dropFirst()), qemu: qemu)
            status = r.exitStatus
        }
        if status != 0 { throw ExitCode(status) }
    }
}
