import OvlCore

/// Figure 2 replayed one step at a time: each edge considered in descending weight,
/// what it would have joined, and what happened.
enum StepView {
    static func kindText(_ k: CoalesceEvent.Kind) -> (String, Style) {
        switch k {
        case .merged: return ("merged", Style(color: .green))
        case .absorbedIntoCore: return ("into core", Style(color: .cyan, bold: true))
        case .refused: return ("refused", Style(color: .red))
        case .defragmented: return ("defrag", Style(color: .yellow))
        case .defragmentedIntoCore: return ("defrag core", Style(color: .cyan))
        }
    }

    /// A cluster as the steps name it: by its lowest chain (core is -1).
    static func side(_ c: Int32, _ m: ExplorerModel) -> String {
        c < 0 ? "core" : m.chainName(Int(c))
    }

    static func draw(_ g: inout Grid, _ s: ExplorerState, _ gl: Glyphs) {
        guard let a = s.analysis else { return }
        let m = s.model
        let l = Layout(width: s.width, height: s.height)
        let ev = a.events
        let (merges, core, refused, defrag) = a.eventCounts
        g.title("coalescing, step by step", detail: "\(Describe.count(ev.count)) steps: \(Describe.count(merges)) merged, \(Describe.count(core)) into core, \(Describe.count(refused)) refused, \(Describe.count(defrag)) defragmentation" + (s.steps.show == .all ? "" : "  \(gl.vertical) showing \(s.steps.show.rawValue)"), y: l.bodyTop, glyphs: gl)
        let wide = g.width >= 110
        let cols = Columns([
            .fixed("step", 7),
            .fixed("what", 11, right: false),
            .flex("cluster a", min: 10),
            .flex("cluster b", min: 10),
            .fixed("weight", wide ? 10 : 7),
            .fixed("a + b = size", wide ? 21 : 17),
            .fixed("limit", 6),
        ], total: g.width - 2)
        cols.header(&g, y: l.bodyTop + 1, glyphs: gl)
        let (top, rows) = Lists.area(s, .steps)
        let cur = s.steps.cursor
        for r in 0..<rows {
            let i = cur.top + r
            guard i < s.steps.rows.count else { break }
            let idx = Int(s.steps.rows[i])
            let e = ev[idx]
            let y = top + r
            let (kt, ks) = kindText(e.kind)
            cols.put(&g, 0, Describe.count(idx + 1), y: y, style: .dim, glyphs: gl)
            cols.put(&g, 1, kt, y: y, style: ks, glyphs: gl)
            cols.put(&g, 2, side(e.a, m), y: y, style: e.a < 0 ? Style(color: .cyan) : .plain, glyphs: gl)
            cols.put(&g, 3, side(e.b, m), y: y, style: e.b < 0 ? Style(color: .cyan) : .plain, glyphs: gl)
            let isDefrag = e.kind == .defragmented || e.kind == .defragmentedIntoCore
            cols.put(&g, 4, isDefrag ? "-" : Describe.count(e.weight), y: y, style: isDefrag ? .dim : .plain, glyphs: gl)
            cols.put(&g, 5, "\(Describe.count(Int(e.sizeA)))+\(Describe.count(Int(e.sizeB)))=\(Describe.count(Int(e.result)))", y: y,
                     style: e.kind == .refused ? Style(color: .red) : .plain, glyphs: gl)
            cols.put(&g, 6, Describe.count(Int(e.limit)), y: y, style: .dim, glyphs: gl)
            if i == cur.row { g.select(y: y) }
        }
        if ev.isEmpty { g.put("no steps: every chain is resident or there are no edges", x: 2, y: top, style: .dim) }
        g.scrollMark(top: cur.top, rows: rows, count: s.steps.rows.count, firstRow: top, glyphs: gl)

        // The selected step, in words.
        let fy = l.bodyTop + l.bodyHeight - 4
        g.fill(x: 0, y: fy, width: g.width, height: 4)
        g.put(String(repeating: gl.horizontal, count: g.width), x: 0, y: fy, style: .dim)
        guard cur.row < s.steps.rows.count else { return }
        let idx = Int(s.steps.rows[cur.row])
        let e = ev[idx]
        for (j, line) in explain(e, idx, a, m, gl).enumerated() {
            line.draw(&g, x: 1, y: fy + 1 + j, limit: g.width - 2, glyphs: gl)
        }
    }

    static func explain(_ e: CoalesceEvent, _ idx: Int, _ a: Analysis, _ m: ExplorerModel, _ gl: Glyphs) -> [Spans] {
        let n = a.events.count
        let sa = Describe.count(Int(e.sizeA)), sb = Describe.count(Int(e.sizeB))
        let res = Describe.count(Int(e.result)), lim = Describe.count(Int(e.limit))
        var l1 = Spans(), l2 = Spans(), l3 = Spans()
        l1.add("step \(Describe.count(idx + 1)) of \(Describe.count(n)): ", .bold)
        switch e.kind {
        case .merged, .absorbedIntoCore, .refused:
            l1.add("the edge between {\(side(e.a, m))} and {\(side(e.b, m))}, weight \(Describe.count(e.weight))")
            l1.add("  (Fig. 2 step 3: heaviest edge first)", .dim)
        case .defragmented, .defragmentedIntoCore:
            l1.add("leftover clusters {\(side(e.a, m))} and {\(side(e.b, m))}")
            l1.add("  (Fig. 2 step 4: defragmentation, smallest first)", .dim)
        }
        switch e.kind {
        case .merged, .defragmented:
            l2.add("\(sa) + \(sb) \(gl.arrowRight) \(res) B \(gl.lessEqual) \(lim) B (the buffer): ")
            l2.add("merged", Style(color: .green, bold: true))
            l2.add(" (shared stubs vanish, so the sum can be smaller)", .dim)
        case .absorbedIntoCore, .defragmentedIntoCore:
            l2.add("core \(sa) + \(sb) \(gl.arrowRight) \(res) B \(gl.lessEqual) core limit \(lim) B: ")
            l2.add("absorbed into core", Style(color: .cyan, bold: true))
            l2.add(": its code becomes hot, resident code", .dim)
        case .refused:
            l2.add("\(sa) + \(sb) \(gl.arrowRight) \(res) B \(gl.greater) \(lim) B: ")
            l2.add("refused", Style(color: .red, bold: true))
            l2.add(e.a < 0 || e.b < 0 ? (CoreLimit(a.clustering).byBuffer ? " (core would outgrow the buffer size, its limit)" : " (core would outgrow its \(gl.gamma) allowance)")
                                      : " (would not fit in the code buffer)", .dim)
        }
        l3.add("after it: \(Describe.count(Int(a.liveAfter[idx]), "cluster")) besides core, core \(Describe.count(Int(a.coreAfter[idx]))) of \(Describe.count(CoreLimit(a.clustering).bytes)) B", .plain)
        let endA = e.a < 0 ? "core" : (a.clustering.chainCluster[Int(e.a)] < 0 ? "resident" : "c\(a.clustering.chainCluster[Int(e.a)])")
        l3.add("  \(gl.vertical) {\(side(e.a, m))} ends in \(endA)", .dim)
        return [l1, l2, l3]
    }
}
