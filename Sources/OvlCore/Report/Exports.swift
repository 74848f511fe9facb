import Foundation

/// The files a clustering can be written out as, for `ovl export` and the explorer:
/// the cluster graph for Graphviz, and a GNU ld script for engineers who relink from
/// source with `-ffunction-sections` instead of rewriting the image.
public enum Exports {
    /// The configuration as TOML that `ovl analyze --config` reads back to the same
    /// clustering, with a comment saying what it reproduces and how to run it.
    public static func toml(session s: Session, config: Config, row: Table1Row) -> String {
        var comment = "ovl configuration for \(s.program.path)"
        if !s.profiles.isEmpty { comment += " with \(s.profiles.map(\.source).joined(separator: ", "))" }
        comment += "\nreproduces: \(Describe.count(row.clusters, "cluster")), resident \(row.residentBytes) B, total memory \(row.totalMemory) B, reduction \(Describe.percent(row.reductionPercent))"
        comment += "\nrun: ovl analyze \(s.program.path)\(s.profiles.map { " --profile \($0.source)" }.joined()) --config FILE"
        return config.toml(comment: comment)
    }

    /// The whole cluster graph after coalescing as Graphviz DOT: one node per overlay
    /// cluster (size, chains, loads, its first member) and one for the resident code, one
    /// undirected edge per pair of nodes control passes between, labelled with the summed
    /// profile weight. Edges that never ran are dashed. Nodes are shaded by loads.
    public static func dot(session s: Session, clustering c: Clustering, config: Config, clusterLoads: [UInt64]) -> String {
        let adj = ClusterAdjacency(graph: s.graph, clustering: c)
        let image = (s.program.path as NSString).lastPathComponent
        var out = "// ovl cluster graph of \(image): γ \(Describe.gamma(config.gamma))%, buffer \(config.bufferSize) B, \(c.clusterCount) clusters\n"
        out += "// Edge labels: transfers between the two nodes counted in the profiles (\(s.profiles.map(\.name).joined(separator: ", ")))\n"
        out += "graph \"ovl\" {\n"
        out += "  graph [overlap=false, splines=true, fontname=\"monospace\", label=\(quote("\(image): γ \(Describe.gamma(config.gamma))%, buffer \(config.bufferSize) B, \(c.clusterCount) clusters, resident \(Describe.count(c.residentCodeBytes)) B"))];\n"
        out += "  node [shape=box, style=filled, colorscheme=ylorrd9, fontname=\"monospace\"];\n"
        out += "  edge [fontname=\"monospace\"];\n"
        let maxLoads = max(1, clusterLoads.max() ?? 1)
        let resident = c.chainState.filter { $0 != .cold }.count
        out += "  resident [label=\(quote("resident code\n\(Describe.count(c.residentCodeBytes)) B, \(Describe.count(resident)) chains\ncore + hot")), fillcolor=\"#cfe3f7\", shape=box3d];\n"
        for k in 0..<c.clusterCount {
            let loads = k < clusterLoads.count ? clusterLoads[k] : 0
            let shade = loads == 0 ? 1 : 2 + Int((log(Double(loads) + 1) / log(Double(maxLoads) + 1) * 7).rounded(.down).clamped(0, 7))
            let first = c.clusterChains[k].first.map { Describe.chain(Int($0), session: s) } ?? ""
            let label = "cluster \(k)\n\(Describe.count(Int(c.clusterSize[k]))) B, \(c.clusterChains[k].count) chains\n\(first)\nloads \(Describe.count(loads))"
            out += "  c\(k) [label=\(quote(label)), fillcolor=\(shade)];\n"
        }
        func name(_ node: Int32) -> String { node == adj.residentNode ? "resident" : "c\(node)" }
        let maxWeight = adj.neighbours.lazy.flatMap { $0.map(\.weight) }.max() ?? 0
        for a in 0..<adj.nodeCount {
            for (b, w) in adj.neighbours[a] where Int32(a) < b {
                var attrs = "label=\(quote(Describe.count(w)))"
                if w == 0 {
                    attrs += ", style=dashed, color=gray"
                } else {
                    let pen = 1 + 4 * log(Double(w) + 1) / log(Double(max(maxWeight, 1)) + 1)
                    attrs += String(format: ", penwidth=%.1f", pen)
                }
                out += "  \(name(Int32(a))) -- \(name(b)) [\(attrs)];\n"
            }
        }
        out += "}\n"
        return out
    }

    /// A GNU ld script with one `OVERLAY` output section per cluster, listing each
    /// cluster's functions by their `-ffunction-sections` input sections (`.text.NAME`,
    /// and the `.text.hot.`, `.text.unlikely.` and `.text.startup.` forms GCC uses when it
    /// reorders functions). Used as `-T FILE` beside the default script: `INSERT AFTER
    /// .text` makes the overlay sections claim their input sections before `.text` does,
    /// and leaves the resident functions where they are. Needs function granularity,
    /// where every cluster holds whole functions.
    public static func linkerScript(session s: Session, clustering c: Clustering, config: Config, clusterLoads: [UInt64]) throws -> String {
        guard config.granularity == .function else {
            throw OvlError("an ld script lists whole functions, so it needs function granularity: run with --granularity function (or granularity = \"function\" in the configuration)")
        }
        let p = s.program
        let image = (p.path as NSString).lastPathComponent
        var out = "/* ovl overlay script for \(image)\n"
        out += " * γ \(Describe.gamma(config.gamma))%, code buffer \(config.bufferSize) B, \(c.clusterCount) clusters; resident code \(Describe.count(c.residentCodeBytes)) B stays in .text.\n"
        out += " * Use beside the default script: cc -ffunction-sections ... -Wl,-T,\(image).ld\n"
        out += " * Every cluster is linked at the code buffer's address (one VMA, one load address\n"
        out += " * each); ld defines __load_start_ovlN / __load_stop_ovlN for the overlay manager.\n"
        out += " * Calls between clusters must go through the manager's stubs.\n"
        var skipped: [String] = []
        var sections: [(Int, [String])] = []
        for k in 0..<c.clusterCount {
            var names: [String] = []
            var seen = Set<Int32>()
            for ch in c.clusterChains[k] {
                for b in s.chains.blocks(of: Int(ch)) {
                    let f = p.blockFunction[b]
                    guard seen.insert(f).inserted else { continue }
                    let fn = p.functions[Int(f)]
                    if fn.isGap || !(fn.section == ".text" || fn.section.hasPrefix(".text.")) {
                        skipped.append(fn.name)
                        continue
                    }
                    names.append(fn.name)
                }
            }
            sections.append((k, names))
        }
        if !skipped.isEmpty {
            out += " * Not listed (no section of their own: code between symbols, or outside .text):\n"
            out += " *   \(skipped.joined(separator: " "))\n"
        }
        out += " */\n\n"
        out += "SECTIONS\n{\n"
        out += "  OVERLAY : \n  {\n"
        for (k, names) in sections {
            let loads = k < clusterLoads.count ? clusterLoads[k] : 0
            out += "    /* cluster \(k): \(Describe.count(Int(c.clusterSize[k]))) B with stubs, \(names.count) functions, \(Describe.count(loads)) loads */\n"
            out += "    .ovl\(k)\n    {\n"
            for n in names {
                let patterns = [".text.", ".text.hot.", ".text.unlikely.", ".text.startup."].map { ldName($0 + n) }
                out += "      *(\(patterns.joined(separator: " ")))\n"
            }
            out += "    }\n"
        }
        out += "  }\n}\nINSERT AFTER .text;\n"
        return out
    }

    /// A section name as ld reads it: quoted when it holds characters outside a plain name.
    static func ldName(_ s: String) -> String {
        let plain = s.unicodeScalars.allSatisfy { ($0.isASCII && (CharacterSet.alphanumerics.contains($0))) || $0 == "_" || $0 == "." || $0 == "$" }
        return plain ? s : "\"" + s.replacingOccurrences(of: "\"", with: "") + "\""
    }

    static func quote(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n") + "\""
    }
}

extension Comparable {
    fileprivate func clamped(_ lo: Self, _ hi: Self) -> Self { min(max(self, lo), hi) }
}
