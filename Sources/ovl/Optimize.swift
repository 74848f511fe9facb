import ArgumentParser
import Foundation
import OvlCore

struct OptimizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "optimize",
        abstract: "Search buffer size, buffers and resident code for the memory/load-cost frontier, beside demand paging.",
        discussion: """
        Trains on the --profile traces with the affinity layout (temporal affinity, resident \
        code by entries per byte, unseen code by address) and reports, for each configuration \
        on the frontier, its total memory as ovl rewrite writes it, its loads and estimated \
        cost, demand paging of the original layout at the same memory, Belady's optimal \
        replacement for the same clusters, Figure 2 at no more memory, and the cost on every \
        --evaluate trace it was not trained on. With --memory or --max-cost it chooses one \
        point and, with --toml, writes its configuration, which analyze, rewrite and explore \
        reproduce exactly. Ctrl-C stops the search and keeps the best found so far.
        """)

    @OptionGroup var options: ImageOptions

    @Option(name: .customLong("evaluate"), help: ArgumentHelp("A held-out trace to report beside each point (repeatable).", valueName: "trace"))
    var evaluate: [String] = []

    @Option(parsing: .unconditional, help: ArgumentHelp("Choose the cheapest point whose total memory is at most this (K and M allowed).", valueName: "bytes"))
    var memory: String?

    @Option(name: .customLong("max-cost"), parsing: .unconditional, help: ArgumentHelp("Choose the smallest point whose estimated cost (all training phases) is at most this many seconds.", valueName: "seconds"))
    var maxCost: String?

    @Option(name: .customLong("cost-phase"), help: ArgumentHelp("A training phase (profile name) whose cost the frontier minimises; repeatable; all phases when not given.", valueName: "name"))
    var costPhases: [String] = []

    @Flag(help: "Print the whole frontier.")
    var frontier = false

    @Option(help: ArgumentHelp("Write the frontier (memory against cost, paging and Figure 2 beside it) as SVG.", valueName: "file"))
    var svg: String?

    @Option(help: ArgumentHelp("Write the chosen configuration as TOML.", valueName: "file"))
    var toml: String?

    @Option(help: ArgumentHelp("Code buffer sizes to try, comma-separated (K allowed).", valueName: "list"))
    var bufferSizes = "1K,2K,4K"

    @Option(help: ArgumentHelp("Numbers of code buffers to try, comma-separated.", valueName: "list"))
    var bufferCounts = "1,2,4,8"

    @Flag(help: "Print JSON: every frontier point and the chosen one.")
    var json = false

    func run() throws {
        try guarded {
            let budget = try memory.map { try parseSize($0, what: "--memory") }
            if let b = budget, b <= 0 { throw OvlError("--memory must be a positive number of bytes, not '\(memory!)'") }
            let costLimit: Double? = try maxCost.map { v in
                guard let d = Double(v), d.isFinite, d >= 0 else { throw OvlError("--max-cost must be a number of seconds of 0 or more, not '\(v)'") }
                return d
            }
            guard frontier || budget != nil || costLimit != nil || svg != nil else {
                throw OvlError("say what to optimise for: --memory BYTES, --max-cost SECONDS or --frontier")
            }
            if toml != nil && budget == nil && costLimit == nil {
                throw OvlError("--toml writes the chosen point: give --memory or --max-cost too")
            }
            let sizes = try bufferSizes.split(separator: ",").map { try parseSize(String($0), what: "--buffer-sizes") }
            let counts = try bufferCounts.split(separator: ",").map { v -> Int in
                guard let n = Int(v.trimmingCharacters(in: .whitespaces)), n >= 1, n <= 64 else {
                    throw OvlError("--buffer-counts must list numbers from 1 to 64, not '\(bufferCounts)'")
                }
                return n
            }
            for b in sizes where b < Rewriter.minimumBufferSize {
                throw OvlError("--buffer-sizes: \(b) B is smaller than the smallest code buffer the rewriter accepts (\(Rewriter.minimumBufferSize) B)")
            }
            let s = try options.openSession()
            guard s.profiles.contains(where: \.hasSequence) else {
                throw OvlError("optimize needs at least one trace (--profile): an ovl trace or a QEMU exec log, whose order decides the loads")
            }
            let held = try evaluate.map { try ProfileLoader.load(path: $0, program: s.program, chains: s.chains, showProgress: !options.noProgress && Progress.stderrIsTerminal) }
            let opt = Optimizer(session: s, evaluate: held)
            for name in costPhases where !s.profiles.contains(where: { $0.name == name }) {
                throw OvlError("--cost-phase \(name) names no profile; the phases are \(s.profiles.map(\.name).joined(separator: ", "))")
            }
            opt.costPhases = Set(costPhases)
            var o = Optimizer.Options()
            o.bufferSizes = sizes
            o.bufferCounts = counts
            let total = o.budgetFractions.count * sizes.count * counts.count
            let progress = Progress("optimize", total: UInt64(total), enabled: !options.noProgress && Progress.stderrIsTerminal)
            let start = Date()
            let tried = opt.search(o, progress: { d, _ in progress.update(UInt64(d), unit: "configurations") },
                                   shouldStop: { Interrupt.requested })
            progress.finish()
            let interrupted = Interrupt.requested
            Interrupt.reset()
            guard !tried.isEmpty else { throw OvlError("interrupted before any configuration was tried") }
            let points = opt.finish(Optimizer.frontier(tried))
            let front = Optimizer.frontier(points)
            let seconds = Date().timeIntervalSince(start)

            var chosen: FrontierPoint?
            if let b = budget {
                chosen = front.filter { $0.totalMemory <= b }.min { $0.cost != $1.cost ? $0.cost < $1.cost : $0.totalMemory < $1.totalMemory }
                if chosen == nil {
                    throw OvlError("no configuration fits in \(Describe.count(b)) B: the smallest feasible total memory is \(Describe.count(front.first!.totalMemory)) B (core, the manager and one \(Describe.count(front.first!.bufferSize)) B buffer)")
                }
            } else if let limit = costLimit {
                chosen = front.filter { $0.cost <= limit }.min { $0.totalMemory < $1.totalMemory }
                if chosen == nil {
                    throw OvlError("no configuration costs \(limit) s or less: the cheapest found costs \(String(format: "%.4f", front.map(\.cost).min()!)) s")
                }
            }
            if let svg {
                try writeAtomically(FrontierSVG.svg(front, title: "Memory against load cost: \((s.program.path as NSString).lastPathComponent)"),
                                    to: svg, inputs: [options.image] + options.profiles + evaluate + (options.settings.config.map { [$0] } ?? []))
            }
            if let toml, let c = chosen {
                let cfg = opt.config(of: c, base: s.config)
                let note = "ovl optimize: total memory \(c.totalMemory) B (\(Describe.percent(c.reductionPercent)) less code memory), est. cost \(String(format: "%.4f", c.cost)) s; paging at the same memory \(String(format: "%.4f", c.pagingCost)) s"
                try writeAtomically(cfg.toml(comment: note), to: toml, inputs: [options.image] + options.profiles + evaluate + (options.settings.config.map { [$0] } ?? []))
            }
            if json {
                struct Out: Encodable { var frontier: [FrontierPoint]; var chosen: FrontierPoint?; var configurationsTried: Int; var seconds: Double; var interrupted: Bool }
                try printJSON(Out(frontier: front, chosen: chosen, configurationsTried: tried.count, seconds: seconds, interrupted: interrupted))
                return
            }
            var out = AnalysisReport.preamble(session: s)
            out += "tried     \(tried.count) configurations in \(String(format: "%.1f", seconds)) s\(interrupted ? " (interrupted: the best found so far)" : "")\n\n"
            if frontier || chosen == nil {
                out += FrontierText.table(front)
            }
            if let c = chosen {
                out += "\nchosen: \(FrontierText.describe(c))\n"
                if let toml { out += "wrote \(toml)\n" }
            }
            print(out, terminator: "")
        }
    }
}

/// The frontier as text: one row per point, paging and Figure 2 beside it.
enum FrontierText {
    static func table(_ front: [FrontierPoint]) -> String {
        let phaseNames = front.first?.phases.map(\.phase) ?? []
        let evalNames = front.first?.evaluations.map(\.phase) ?? []
        var header = ["memory", "reduction", "buffers", "resident budget", "clusters"]
        for p in phaseNames { header += ["\(p) loads", "paging", "×", "Belady"] }
        header += ["cost (s)", "paging (s)", "Fig. 2 (s)"]
        for e in evalNames { header += ["\(e) loads", "paging", "cost (s)"] }
        let rows = front.map { p -> [String] in
            var r = [Describe.count(p.totalMemory) + (p.memory.exact ? "" : "~"), Describe.percent(p.reductionPercent),
                     "\(p.buffers) × \(Describe.count(p.bufferSize))", Describe.count(p.residentBudget), Describe.count(p.clusters)]
            for f in p.phases { r += [Describe.count(f.loads), Describe.count(f.pagingLoads), ratio(f), Describe.count(f.beladyLoads)] }
            r += [String(format: "%.4f", p.cost), String(format: "%.4f", p.pagingCost), p.figure2Cost.map { String(format: "%.4f", $0) } ?? "none fits"]
            for f in p.evaluations { r += [Describe.count(f.loads), Describe.count(f.pagingLoads), String(format: "%.4f", f.estimatedCostSeconds)] }
            return r
        }
        var out = Describe.table(header, rows)
        out += "memory: total as ovl rewrite writes it (~: estimated, the rewriter cannot write this image); ×: how many times fewer loads than paging the original layout in the same memory; Belady: the fewest loads any replacement policy needs for the same clusters\n"
        return out
    }

    static func ratio(_ f: PhaseFigures) -> String {
        guard let r = f.pagingRatio else { return "-" }
        if r.isInfinite { return "∞" }
        return r >= 10 ? String(format: "%.0f", r) : String(format: "%.1f", r)
    }

    static func describe(_ p: FrontierPoint) -> String {
        var s = "\(p.buffers) × \(Describe.count(p.bufferSize)) B buffers, resident budget \(Describe.count(p.residentBudget)) B: total memory \(Describe.count(p.totalMemory)) B (\(Describe.percent(p.reductionPercent)) less), \(p.clusters) clusters"
        for f in p.phases {
            s += "\n  \(f.phase): \(Describe.count(f.loads)) loads (\(String(format: "%.4f", f.estimatedCostSeconds)) s); paging \(Describe.count(f.pagingLoads)) loads (\(String(format: "%.4f", f.pagingCostSeconds)) s), \(ratio(f))× ; Belady \(Describe.count(f.beladyLoads))"
        }
        for f in p.evaluations {
            s += "\n  held out \(f.phase): \(Describe.count(f.loads)) loads (\(String(format: "%.4f", f.estimatedCostSeconds)) s); paging \(Describe.count(f.pagingLoads)) loads (\(String(format: "%.4f", f.pagingCostSeconds)) s), \(ratio(f))×"
        }
        if let f2 = p.figure2Cost { s += "\n  Figure 2 at no more memory: \(String(format: "%.4f", f2)) s" }
        s += "\n  memory: \(p.memory.breakdown)"
        return s
    }
}

/// The frontier drawn: total memory across, estimated cost up (log scale), the affinity
/// layout, paging at the same memory, and Figure 2 where it fits.
enum FrontierSVG {
    static func svg(_ front: [FrontierPoint], title: String) -> String {
        let w = 720.0, h = 420.0, left = 70.0, right = 20.0, top = 40.0, bottom = 50.0
        let xs = front.map { Double($0.totalMemory) }
        let costs = front.flatMap { [$0.cost, $0.pagingCost] + ($0.figure2Cost.map { [$0] } ?? []) }.filter { $0 > 0 }
        let xmin = xs.min() ?? 0, xmax = max((xs.max() ?? 1), xmin + 1)
        let ymin = max(1e-6, (costs.min() ?? 1e-4) / 2), ymax = max(ymin * 10, (costs.max() ?? 1) * 2)
        func X(_ v: Double) -> Double { left + (v - xmin) / (xmax - xmin) * (w - left - right) }
        func Y(_ v: Double) -> Double { top + (1 - (log10(max(v, ymin)) - log10(ymin)) / (log10(ymax) - log10(ymin))) * (h - top - bottom) }
        func line(_ pts: [(Double, Double)], _ color: String, _ name: String) -> String {
            guard !pts.isEmpty else { return "" }
            let d = pts.map { String(format: "%.1f,%.1f", X($0.0), Y($0.1)) }.joined(separator: " ")
            return "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(d)\"><title>\(name)</title></polyline>\n"
                + pts.map { String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"\(color)\"/>", X($0.0), Y($0.1)) }.joined(separator: "\n") + "\n"
        }
        func esc(_ s: String) -> String { s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;") }
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"\(Int(left))\" y=\"20\" font-size=\"14\">\(esc(title))</text>\n"
        out += "<line x1=\"\(left)\" y1=\"\(h - bottom)\" x2=\"\(w - right)\" y2=\"\(h - bottom)\" stroke=\"black\"/>\n<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(h - bottom)\" stroke=\"black\"/>\n"
        out += "<text x=\"\(Int(w / 2))\" y=\"\(Int(h - 12))\" text-anchor=\"middle\">total memory (bytes): \(Int(xmin)) – \(Int(xmax))</text>\n"
        out += "<text x=\"14\" y=\"\(Int(h / 2))\" transform=\"rotate(-90 14 \(Int(h / 2)))\" text-anchor=\"middle\">estimated load cost (s, log)</text>\n"
        out += line(front.map { (Double($0.totalMemory), $0.cost) }, "#1f6feb", "ovl optimize (affinity layout)")
        out += line(front.map { (Double($0.totalMemory), $0.pagingCost) }, "#d1242f", "demand paging of the original layout, same memory")
        out += line(front.compactMap { p in p.figure2Cost.map { (Double(p.totalMemory), $0) } }, "#8250df", "Figure 2 at no more memory")
        out += "<text x=\"\(Int(w - 260))\" y=\"\(Int(top + 10))\" fill=\"#1f6feb\">ovl optimize</text>\n"
        out += "<text x=\"\(Int(w - 260))\" y=\"\(Int(top + 26))\" fill=\"#d1242f\">paging, same memory</text>\n"
        out += "<text x=\"\(Int(w - 260))\" y=\"\(Int(top + 42))\" fill=\"#8250df\">Figure 2, no more memory</text>\n"
        out += "</svg>\n"
        return out
    }
}
