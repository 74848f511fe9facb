import Foundation
import OvlCore

/// Overlay clusters: size against the code buffer, members, loads and cost.
enum ClusterView {
    static func columns(_ width: Int) -> Columns {
        let wide = width >= 110
        return Columns([
            .fixed(wide ? "cluster" : "id", wide ? 8 : 4, right: false),
            .fixed(wide ? "size against the buffer" : "size/buffer", wide ? 24 : 11, right: false),
            .fixed("bytes", 6),
            .fixed("chains", 6),
            .fixed("fns", 4),
            .fixed("loads", wide ? 9 : 7),
            .fixed(wide ? "KB loaded" : "KB ld", wide ? 10 : 6),
            .fixed("cost", 8),
            .flex("first member", min: 8),
        ], total: width - 2)
    }

    static func sortColumn(_ s: ClusterSort) -> Int {
        switch s {
        case .id: return 0
        case .size: return 2
        case .loads: return 5
        case .cost: return 7
        }
    }

    static func draw(_ g: inout Grid, _ s: ExplorerState, _ gl: Glyphs) {
        guard let a = s.analysis else { return }
        let m = s.model
        let l = Layout(width: s.width, height: s.height)
        let c = a.clustering
        // Summary: the resident side.
        var sum = Spans()
        sum.add(" resident ", .plain)
        sum.add("\(Describe.count(c.residentCodeBytes)) B", .bold)
        sum.add(" = core \(Describe.count(a.residentSplit.core)) + hot \(Describe.count(a.residentSplit.hot))")
        if a.residentSplit.oversize > 0 { sum.add(" + oversize \(Describe.count(a.residentSplit.oversize))", Style(color: .magenta)) }
        sum.add(" + stubs \(Describe.count(c.residentCodeBytes - a.residentSplit.core - a.residentSplit.hot - a.residentSplit.oversize))")
        if s.config.bufferSize > c.coreLimit {
            sum.add("  (limit \(Describe.count(s.config.bufferSize)) B: the buffer size, above core \(gl.times) (1+\(gl.gamma)) = \(Describe.count(c.coreLimit)))", .dim)
        } else {
            sum.add("  (limit core \(gl.times) (1+\(gl.gamma)) = \(Describe.count(c.coreLimit)) B)", .dim)
        }
        sum.draw(&g, x: 0, y: l.bodyTop, limit: g.width - 1, glyphs: gl)

        let cols = columns(g.width)
        cols.header(&g, y: l.bodyTop + 1, glyphs: gl, sorted: sortColumn(s.clusters.sort), descending: s.clusters.descending)
        let (top, rows) = Lists.area(s, .clusters)
        let cur = s.clusters.cursor
        let maxLoads = max(1, a.clusterLoads.max() ?? 1)
        for r in 0..<rows {
            let i = cur.top + r
            guard i < s.clusters.rows.count else { break }
            let k = Int(s.clusters.rows[i])
            let y = top + r
            let size = Int(c.clusterSize[k])
            let frac = Double(size) / Double(max(1, s.config.bufferSize))
            cols.put(&g, 0, "c\(k)", y: y, style: .bold, glyphs: gl)
            cols.put(&g, 1, gl.bar(frac, width: cols.widths[1], empty: true), y: y,
                     style: Style(color: frac > 0.97 ? .green : frac > 0.75 ? .cyan : .yellow), glyphs: gl)
            cols.put(&g, 2, Describe.count(size), y: y, glyphs: gl)
            cols.put(&g, 3, Describe.count(c.clusterChains[k].count), y: y, glyphs: gl)
            cols.put(&g, 4, Describe.count(a.clusterFunctionCount[k]), y: y, glyphs: gl)
            let loads = a.clusterLoads[k]
            let heat = Double(loads) / Double(maxLoads)
            cols.put(&g, 5, loads == 0 ? "-" : Describe.count(loads), y: y,
                     style: loads == 0 ? .dim : Style(color: heat > 0.5 ? .red : heat > 0.1 ? .yellow : .none), glyphs: gl)
            let kb = Double(a.clusterBytesLoaded[k]) / 1024
            cols.put(&g, 6, loads == 0 ? "-" : (kb >= 100 ? Describe.count(Int(kb.rounded())) : String(format: "%.1f", kb)), y: y, style: loads == 0 ? .dim : .plain, glyphs: gl)
            cols.put(&g, 7, loads == 0 ? "-" : HeaderView.seconds(a.clusterSeconds[k]), y: y, style: loads == 0 ? .dim : .plain, glyphs: gl)
            cols.put(&g, 8, c.clusterChains[k].first.map { m.chainName(Int($0)) } ?? "", y: y, glyphs: gl)
            if i == cur.row { g.select(y: y) }
        }
        if s.clusters.rows.isEmpty {
            g.put("no overlay clusters: all code is resident", x: 2, y: top + 1, style: .dim)
        }
        g.scrollMark(top: cur.top, rows: rows, count: s.clusters.rows.count, firstRow: top, glyphs: gl)

        // Footer: the selected cluster's functions and per-phase loads.
        let y = l.bodyTop + l.bodyHeight - 1
        guard cur.row < s.clusters.rows.count else { return }
        let k = Int(s.clusters.rows[cur.row])
        var names: [String] = []
        var last = -1
        for ch in c.clusterChains[k] {
            let f = m.chainFunction(Int(ch))
            if f != last { names.append(m.program.functions[f].name); last = f }
        }
        var sp = Spans()
        sp.add("c\(k): ", .bold)
        let perPhase = a.phases.enumerated().map { i, p in
            "\(i < m.phaseLabels.count ? m.phaseLabels[i] : p.phase) \(Describe.count(k < p.clusterLoads.count ? p.clusterLoads[k] : 0))"
        }
        if !perPhase.isEmpty { sp.add("loads " + perPhase.joined(separator: ", ") + "  \(gl.vertical) ", .plain) }
        sp.add(names.joined(separator: " "), .dim)
        sp.draw(&g, x: 1, y: y, limit: g.width - 2, glyphs: gl)
    }
}
