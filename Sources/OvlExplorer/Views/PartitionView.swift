import Foundation
import OvlCore

/// Every function: size, heat, loads, what pinning it would buy, and where it ended up.
enum PartitionView {
    static func columns(_ width: Int) -> Columns {
        let wide = width >= 110
        return Columns([
            .flex("function", min: 12),
            .fixed("size", 7),
            .fixed("heat", wide ? 10 : 6, right: false),
            .fixed("runs", wide ? 11 : 8),
            .fixed("loads", wide ? 9 : 7),
            // Loads saved per KB that pinning adds to resident code: + better, − worse.
            .fixed(wide ? "pin: loads saved/KB" : "saved/KB", wide ? 20 : 9),
            .fixed("state", wide ? 26 : 14, right: false),
        ], total: width - 2)
    }

    static func sortColumn(_ s: PartitionSort) -> Int {
        switch s {
        case .name: return 0
        case .size: return 1
        case .heat: return 2
        case .loads: return 4
        case .whatIf: return 5
        }
    }

    static func draw(_ g: inout Grid, _ s: ExplorerState, _ gl: Glyphs) {
        guard let a = s.analysis else { return }
        let m = s.model
        let l = Layout(width: s.width, height: s.height)
        let (top, rows) = Lists.area(s, .partition)
        let cols = columns(g.width)
        cols.header(&g, y: l.bodyTop, glyphs: gl, sorted: sortColumn(s.partition.sort), descending: s.partition.descending)
        let cur = s.partition.cursor
        let logMax = log(Double(m.maxFunctionHeat) + 1)
        for r in 0..<rows {
            let i = cur.top + r
            guard i < s.partition.rows.count else { break }
            let f = Int(s.partition.rows[i])
            let fn = m.program.functions[f]
            let y = top + r
            let pl = a.placement[f]
            let (stateText, stateStyle) = state(f, pl, a, s, gl, wide: g.width >= 110)
            cols.put(&g, 0, m.displayName(f), y: y, style: pl.kind == .core ? Style(color: .cyan) : .plain, glyphs: gl)
            cols.put(&g, 1, Describe.count(fn.size), y: y, glyphs: gl)
            let heat = m.functionHeat[f]
            let frac = heat == 0 || logMax == 0 ? 0 : log(Double(heat) + 1) / logMax
            cols.put(&g, 2, gl.bar(frac, width: cols.widths[2]), y: y, style: Style(color: heatColor(frac)), glyphs: gl)
            cols.put(&g, 3, heat == 0 ? "-" : Describe.count(heat), y: y, style: heat == 0 ? .dim : .plain, glyphs: gl)
            let loads = a.functionLoads[f]
            cols.put(&g, 4, loads == 0 ? "-" : Describe.count(loads), y: y, style: loads == 0 ? .dim : .plain, glyphs: gl)
            let (wText, wStyle) = whatIfText(f, pl, s, gl)
            cols.put(&g, 5, wText, y: y, style: wStyle, glyphs: gl)
            cols.put(&g, 6, stateText, y: y, style: stateStyle, glyphs: gl)
            if i == cur.row { g.select(y: y) }
        }
        if s.partition.rows.isEmpty {
            g.put("no function matches" + (s.partition.filter.isEmpty ? "" : " '\(s.partition.filter)'") + (s.partition.show == .all ? "" : " among \(s.partition.show.rawValue) functions"),
                  x: 2, y: top + 1, style: .dim)
        }
        g.scrollMark(top: cur.top, rows: rows, count: s.partition.rows.count, firstRow: top, glyphs: gl)
        footer(&g, s, a, gl, y: l.bodyTop + l.bodyHeight - 2)
    }

    static func heatColor(_ f: Double) -> Color {
        f > 0.75 ? .red : f > 0.4 ? .yellow : f > 0 ? .green : .none
    }

    /// The state column: where the function's code went.
    static func state(_ f: Int, _ pl: FunctionPlacement, _ a: Analysis, _ s: ExplorerState, _ gl: Glyphs, wide: Bool) -> (String, Style) {
        func clusters(_ list: [Int32]) -> String {
            let shown = list.prefix(wide ? 4 : 2).map { "c\($0)" }.joined(separator: " ")
            return list.count > (wide ? 4 : 2) ? shown + " +\(list.count - (wide ? 4 : 2))" : shown
        }
        switch pl.kind {
        case .core:
            guard let r = a.core.reason(Int32(f)) else { return ("core", Style(color: .cyan)) }
            if r.origin == .required { return ("core: required" + (wide ? " (\(r.why))" : ""), Style(color: .magenta)) }
            if r.why == "config" { return ("core: pinned", Style(color: .cyan, bold: true)) }
            if r.why.hasPrefix("config: ") { return ("core: glob" + (wide ? " " + r.why.dropFirst(8) : ""), Style(color: .cyan)) }
            return ("core: preset" + (wide ? " (" + r.why.replacingOccurrences(of: "preset: ", with: "") + ")" : ""), Style(color: .cyan))
        case .hot: return ("hot (resident)", Style(color: .red))
        case .oversize: return ("oversize (resident)", Style(color: .magenta))
        case .cold: return ("cold " + clusters(pl.clusters), Style(color: .blue))
        case .mixed: return ("hot + " + clusters(pl.clusters), Style(color: .yellow))
        case .none: return ("no code", .dim)
        }
    }

    static func whatIfText(_ f: Int, _ pl: FunctionPlacement, _ s: ExplorerState, _ gl: Glyphs) -> (String, Style) {
        if pl.kind == .core { return ("-", .dim) }
        if pl.kind == .none { return ("", .dim) }
        guard s.current != nil else { return ("", .dim) }
        guard let w = s.whatIf[Int32(f)] else { return (gl.ellipsis, .dim) }
        if w.savedLoads == 0 { return ("0", .dim) }
        // One convention: a signed number of loads saved per KB; "∞" when pinning adds
        // no resident code at all.
        return (perKB(w.perKB, gl), w.savedLoads > 0 ? Style(color: .green, bold: w.perKB == .infinity) : Style(color: .red))
    }

    static func perKB(_ v: Double, _ gl: Glyphs) -> String {
        let sign = v < 0 ? gl.minus : "+"
        if v.isInfinite { return sign + (gl.isUnicode ? "∞" : "inf") }
        let a = abs(v)
        let t = a >= 100 ? Describe.count(Int(a.rounded())) : a >= 10 ? String(format: "%.0f", a) : String(format: "%.1f", a)
        return sign + t
    }

    /// Two lines about the selected function: what it is, and what pinning it would do.
    static func footer(_ g: inout Grid, _ s: ExplorerState, _ a: Analysis, _ gl: Glyphs, y: Int) {
        let m = s.model
        g.fill(x: 0, y: y, width: g.width, height: 2)
        let count = s.partition.rows.count
        var view = "\(Describe.count(count)) of \(Describe.count(m.functionCount)) functions, by \(s.partition.sort.rawValue)"
        if !s.partition.filter.isEmpty { view += ", filter '\(s.partition.filter)'" }
        if s.partition.show != .all { view += ", \(s.partition.show.rawValue) only" }
        if s.partition.sort == .whatIf, let a = s.current {
            let ran = (0..<m.functionCount).filter { m.functionHeat[$0] > 0 && a.placement.kind($0) != .core && a.placement.kind($0) != .none }
            let done = ran.filter { s.whatIf[Int32($0)] != nil }.count
            if done < ran.count { view += ", what-if \(done) of \(ran.count) computed" }
        }
        guard s.partition.cursor.row < count else {
            g.put(gl.fit(view, g.width - 2), x: 1, y: y, style: .dim)
            return
        }
        let f = Int(s.partition.rows[s.partition.cursor.row])
        let fn = m.program.functions[f]
        var l1 = Spans()
        l1.add(fn.name, .bold)
        l1.add("  0x\(String(fn.address, radix: 16))  \(Describe.count(fn.size)) B, \(fn.blocks.count) block\(fn.blocks.count == 1 ? "" : "s") in \(m.functionChains[f].count) chain\(m.functionChains[f].count == 1 ? "" : "s")")
        l1.add("  \(gl.vertical) \(view)", .dim)
        l1.draw(&g, x: 1, y: y, limit: g.width - 2, glyphs: gl)
        var l2 = Spans()
        let pl = a.placement[f]
        if pl.kind == .core, let r = a.core.reason(Int32(f)) {
            if r.origin == .required {
                l2.add("core for correctness: \(r.why); it cannot be unpinned", Style(color: .magenta))
            } else {
                l2.add("core (\(r.why)); Space unpins it", Style(color: .cyan))
            }
        } else if pl.kind == .none {
            l2.add("no code of its own", .dim)
        } else if s.current == nil {
            l2.add("what-if: waiting for the clustering\(gl.ellipsis)", .dim)
        } else if let w = s.whatIf[Int32(f)] {
            l2.add("pin it (estimate): ", .dim)
            if w.savedLoads >= 0 {
                l2.add("\(Describe.count(w.savedLoads)) fewer loads", Style(color: w.savedLoads > 0 ? .green : .none, bold: true))
            } else {
                l2.add("\(Describe.count(-w.savedLoads)) more loads", Style(color: .red, bold: true))
            }
            l2.add(" (\(HeaderView.seconds(abs(w.savedSeconds))) \(w.savedSeconds >= 0 ? "saved" : "lost")) for \(w.addedBytes >= 0 ? "+" : "")\(Describe.count(w.addedBytes)) B resident", .plain)
            l2.add("  \(gl.vertical) replayed on the training traces", .dim)
        } else {
            l2.add("pin it: estimating\(gl.ellipsis)", .dim)
        }
        l2.draw(&g, x: 1, y: y + 1, limit: g.width - 2, glyphs: gl)
    }
}
