import Foundation
import OvlCore

/// Figure 5 in the terminal: memory reduction and estimated load cost against γ, with the
/// current γ marked and a table of the points.
enum SweepView {
    struct Geometry {
        var chartX: Int
        var plotX0: Int
        var plotW: Int
        var topA: Int
        var heightA: Int
        var topB: Int
        var heightB: Int
        var axisY: Int
        var tableX: Int?
    }

    static func geometry(_ s: ExplorerState) -> Geometry {
        let l = Layout(width: s.width, height: s.height)
        let wide = s.width >= 110
        let tableW = wide ? 48 : 0
        let chartW = s.width - 1 - tableW - (wide ? 2 : 0)
        let labelW = 12
        let chartH = max(4, l.bodyHeight - 4)
        let hA = max(2, (chartH - 1) / 2)
        let hB = max(2, chartH - 1 - hA)
        let topA = l.bodyTop + 1
        return Geometry(chartX: 1, plotX0: 1 + labelW, plotW: max(4, chartW - labelW - 2), topA: topA, heightA: hA,
                        topB: topA + hA + 1, heightB: hB, axisY: topA + hA + 1 + hB, tableX: wide ? chartW + 2 : nil)
    }

    static func column(_ i: Int, count: Int, _ geo: Geometry) -> Int {
        count <= 1 ? geo.plotX0 : geo.plotX0 + Int((Double(i) * Double(geo.plotW - 1) / Double(count - 1)).rounded())
    }

    /// The sweep point under a mouse click.
    static func point(at x: Int, y: Int, _ s: ExplorerState) -> Int? {
        let geo = geometry(s)
        let n = s.sweep.gammas.count
        guard n > 0, y >= geo.topA, y <= geo.axisY, x >= geo.plotX0 - 1, x <= geo.plotX0 + geo.plotW else { return nil }
        return (0..<n).min { abs(column($0, count: n, geo) - x) < abs(column($1, count: n, geo) - x) }
    }

    static func draw(_ g: inout Grid, _ s: ExplorerState, _ gl: Glyphs) {
        if s.sweep.showFrontier { return drawFrontier(&g, s, gl) }
        let l = Layout(width: s.width, height: s.height)
        let sw = s.sweep
        let done = sw.points.compactMap { $0 }
        let n = sw.gammas.count
        g.title("\(gl.gamma) sweep: memory reduction \(gl.point) and estimated load cost \(gl.secondPoint) (Figure 5)",
                detail: "buffer \(Describe.count(s.config.bufferSize)) B, cost summed over \(s.model.phaseLabels.count) phase\(s.model.phaseLabels.count == 1 ? "" : "s")" + (done.count < n ? "  \(gl.vertical) computing \(done.count)/\(n)\(gl.ellipsis)" : ""),
                y: l.bodyTop, glyphs: gl)
        guard n > 0 else { return }
        let geo = geometry(s)
        let xs = (0..<n).map { column($0, count: n, geo) }

        // The current γ, between the points around it.
        let gamma = s.config.gamma
        var gx: Int? = nil
        if let hi = sw.gammas.firstIndex(where: { $0 >= gamma }) {
            if hi == 0 { gx = xs[0] } else {
                let lo = hi - 1
                let t = (gamma - sw.gammas[lo]) / max(1e-9, sw.gammas[hi] - sw.gammas[lo])
                gx = xs[lo] + Int((Double(xs[hi] - xs[lo]) * t).rounded())
            }
        }
        if let gx {
            for y in geo.topA..<geo.axisY where y != geo.topA + geo.heightA {
                g.put(gl.vertical, x: gx, y: y, style: Style(color: .yellow, dim: true))
            }
        }

        // Pane A: reduction, linear.
        let reds = sw.points.map { $0?.reductionPercent }
        let rVals = reds.compactMap { $0 }
        if let lo = rVals.min(), let hi = rVals.max() {
            let span = max(0.5, hi - lo)
            let bottom = lo - span * 0.1, top = hi + span * 0.1
            plot(&g, values: reds, xs: xs, top: geo.topA, height: geo.heightA, map: { ($0 - bottom) / (top - bottom) },
                 marker: gl.point, style: Style(color: .green, bold: true), selected: sw.selected, gl)
            label(&g, String(format: "%.1f%%", top), y: geo.topA, geo)
            label(&g, String(format: "%.1f%%", bottom), y: geo.topA + geo.heightA - 1, geo)
        }
        g.put("\(gl.point) reduction", x: geo.chartX, y: geo.topA + 1, style: Style(color: .green), limit: geo.plotX0 - geo.chartX - 1)
        g.put(String(repeating: gl.horizontal, count: geo.plotW + geo.plotX0 - geo.chartX), x: geo.chartX, y: geo.topA + geo.heightA, style: .dim)

        // Pane B: cost, log scale when it spans decades.
        let costs = sw.points.map { $0?.seconds }
        let cVals = costs.compactMap { $0 }
        if let hi = cVals.max(), hi > 0 {
            let positive = cVals.filter { $0 > 0 }
            let lo = positive.min() ?? hi
            let useLog = hi / lo > 20
            let map: (Double) -> Double
            let top: Double, bottom: Double
            if useLog {
                top = pow(10, (log10(hi)).rounded(.up))
                bottom = pow(10, (log10(lo)).rounded(.down))
                map = { v in v <= 0 ? 0 : (log10(v) - log10(bottom)) / max(1e-9, log10(top) - log10(bottom)) }
            } else {
                top = hi * 1.1
                bottom = 0
                map = { v in v / top }
            }
            plot(&g, values: costs, xs: xs, top: geo.topB, height: geo.heightB, map: map,
                 marker: gl.secondPoint, style: Style(color: .yellow, bold: true), selected: sw.selected, gl)
            label(&g, HeaderView.seconds(top), y: geo.topB, geo)
            label(&g, HeaderView.seconds(bottom), y: geo.topB + geo.heightB - 1, geo)
            g.put("\(gl.secondPoint) cost", x: geo.chartX, y: geo.topB + 1, style: Style(color: .yellow), limit: geo.plotX0 - geo.chartX - 1)
            if useLog { g.put("  (log)", x: geo.chartX, y: geo.topB + 2, style: .dim, limit: geo.plotX0 - geo.chartX - 1) }
        } else if !cVals.isEmpty {
            g.put("\(gl.secondPoint) cost 0", x: geo.chartX, y: geo.topB + 1, style: Style(color: .yellow), limit: geo.plotX0 - geo.chartX - 1)
        }

        // The γ axis.
        g.put(gl.gamma + " %", x: geo.chartX, y: geo.axisY, style: .dim)
        var lastEnd = -1
        for (i, x) in xs.enumerated() {
            let t = Describe.gamma(sw.gammas[i])
            let start = x - t.cells / 2
            if start > lastEnd + 1 || i == sw.selected {
                g.put(t, x: start, y: geo.axisY, style: i == sw.selected ? Style(bold: true, reverse: true) : .dim)
                lastEnd = start + t.cells
            }
        }
        if let gx, geo.axisY + 1 < l.bodyTop + l.bodyHeight {
            let t = "\(gl.sortUp) now \(Describe.gamma(gamma))%"
            g.put(t, x: min(max(0, gx), g.width - t.cells - 1), y: geo.axisY + 1, style: Style(color: .yellow, bold: true))
        }

        // The selected point.
        let fy = l.bodyTop + l.bodyHeight - 1
        if sw.selected < n {
            var sp = Spans()
            sp.add("\(gl.gamma) \(Describe.gamma(sw.gammas[sw.selected]))%: ", .bold)
            if let p = sw.points[sw.selected] {
                sp.add("\(Describe.count(p.clusters, "cluster")), total \(Describe.count(p.totalMemory)) B, reduction \(Describe.percent(p.reductionPercent)), \(Describe.count(p.loads)) loads, \(HeaderView.seconds(p.seconds))")
            } else {
                sp.add("computing\(gl.ellipsis)", .dim)
            }
            sp.add("  \(gl.vertical) Enter sets \(gl.gamma)", .dim)
            sp.draw(&g, x: 1, y: fy, limit: g.width - 2, glyphs: gl)
        }

        // The table, when there is room.
        if let tx = geo.tableX {
            let cols = Columns([
                .fixed("\(gl.gamma)%", 5), .fixed("clusters", 8), .fixed("total B", 9), .fixed("red.", 6), .fixed("loads", 7), .fixed("cost", 8),
            ], x: tx, total: g.width - tx - 1)
            cols.header(&g, y: l.bodyTop + 1, glyphs: gl)
            g.restyle(y: l.bodyTop + 1, x: 0, width: tx - 1) { $0 = .plain }
            for i in 0..<n where l.bodyTop + 2 + i < fy - 1 {
                let y = l.bodyTop + 2 + i
                let mark = abs(sw.gammas[i] - gamma) < 1e-9
                cols.put(&g, 0, (mark ? gl.marker : "") + Describe.gamma(sw.gammas[i]), y: y, style: mark ? Style(color: .yellow, bold: true) : .plain, glyphs: gl)
                if let p = sw.points[i] {
                    cols.put(&g, 1, Describe.count(p.clusters), y: y, glyphs: gl)
                    cols.put(&g, 2, Describe.count(p.totalMemory), y: y, glyphs: gl)
                    cols.put(&g, 3, String(format: "%.1f", p.reductionPercent), y: y, style: Style(color: .green), glyphs: gl)
                    cols.put(&g, 4, Describe.count(p.loads), y: y, glyphs: gl)
                    cols.put(&g, 5, HeaderView.seconds(p.seconds), y: y, style: Style(color: .yellow), glyphs: gl)
                } else {
                    cols.put(&g, 1, gl.ellipsis, y: y, style: .dim, glyphs: gl)
                }
                if i == sw.selected { g.restyle(y: y, x: tx, width: g.width - tx - 1) { $0.reverse = true } }
            }
        }
    }

    /// The optimiser's frontier (`o`): each point's total memory, buffers and resident
    /// budget, its loads beside paging's in the same memory, its cost, and Figure 2's best
    /// cost at no more memory; a bar per point compares its cost with paging's.
    static func drawFrontier(_ g: inout Grid, _ s: ExplorerState, _ gl: Glyphs) {
        let l = Layout(width: s.width, height: s.height)
        let sw = s.sweep
        g.title("Frontier: total memory against estimated load cost (ovl optimize), paging and Figure 2 beside it",
                detail: sw.frontier == nil ? "computing\(gl.ellipsis)" : "\(sw.frontier!.count) points  \(gl.vertical) o: back to the \(gl.gamma) sweep",
                y: l.bodyTop, glyphs: gl)
        guard let front = sw.frontier else { return }
        if front.isEmpty {
            g.put("no frontier: the optimiser needs a trace (a profile with the order of execution)", x: 1, y: l.bodyTop + 2, style: .dim)
            return
        }
        let cols = Columns([
            .fixed("total B", 9), .fixed("red.", 6), .fixed("buffers", 10), .fixed("resident+", 9), .fixed("loads", 8),
            .fixed("paging", 8), .fixed("vs pg", 7), .fixed("cost", 9), .fixed("Fig. 2", 9), .flex("cost against paging", min: 8),
        ], x: 1, total: g.width - 2)
        cols.header(&g, y: l.bodyTop + 1, glyphs: gl)
        let fy = l.bodyTop + l.bodyHeight - 1
        let rows = max(1, fy - 1 - (l.bodyTop + 2))
        let first = max(0, min(sw.frontierSelected - rows / 2, front.count - rows))
        let maxCost = front.map { max($0.cost, $0.pagingCost) }.max() ?? 0
        for (r, i) in (first..<min(front.count, first + rows)).enumerated() {
            let p = front[i], y = l.bodyTop + 2 + r
            let loads = p.phases.reduce(UInt64(0)) { $0 + $1.loads }, paging = p.phases.reduce(UInt64(0)) { $0 + $1.pagingLoads }
            cols.put(&g, 0, Describe.count(p.totalMemory) + (p.memory.exact ? "" : "~"), y: y, glyphs: gl)
            cols.put(&g, 1, String(format: "%.1f", p.reductionPercent), y: y, style: Style(color: .green), glyphs: gl)
            cols.put(&g, 2, "\(p.buffers)\(gl.times)\(Describe.count(p.bufferSize))", y: y, glyphs: gl)
            cols.put(&g, 3, Describe.count(p.residentBudget), y: y, glyphs: gl)
            cols.put(&g, 4, Describe.count(loads), y: y, glyphs: gl)
            cols.put(&g, 5, Describe.count(paging), y: y, glyphs: gl)
            cols.put(&g, 6, HeaderView.shortRatio(loads, paging, gl), y: y, style: Style(color: loads <= paging ? .green : .red, bold: true), glyphs: gl)
            cols.put(&g, 7, HeaderView.shortSeconds(p.cost), y: y, style: Style(color: .yellow), glyphs: gl)
            cols.put(&g, 8, p.figure2Cost.map(HeaderView.shortSeconds) ?? "-", y: y, style: .dim, glyphs: gl)
            // Two bars on one scale: ovl's cost, then paging's.
            let w = max(2, cols.widths[9])
            func bar(_ v: Double) -> Int { maxCost <= 0 ? 0 : max(v > 0 ? 1 : 0, Int((v / maxCost * Double(w / 2 - 1)).rounded())) }
            cols.put(&g, 9, String(repeating: gl.barFull, count: bar(p.cost)), y: y, style: Style(color: .yellow), glyphs: gl)
            let px = cols.xs[9] + w / 2
            g.put(String(repeating: gl.barFull, count: bar(p.pagingCost)), x: px, y: y, style: Style(color: .red, dim: true), limit: max(0, g.width - 1 - px))
            if i == sw.frontierSelected { g.restyle(y: y, x: 1, width: g.width - 2) { $0.reverse = true } }
        }
        let sel = front[min(sw.frontierSelected, front.count - 1)]
        var sp = Spans()
        sp.add("\(sel.buffers) \(gl.times) \(Describe.count(sel.bufferSize)) B, resident budget \(Describe.count(sel.residentBudget)) B: ", .bold)
        sp.add(sel.phases.map { "\($0.phase) \(Describe.count($0.loads)) loads (paging \(Describe.count($0.pagingLoads)), Belady \(Describe.count($0.beladyLoads)))" }.joined(separator: ", "))
        sp.add("  \(gl.vertical) Enter adopts it, u undoes", .dim)
        sp.draw(&g, x: 1, y: fy, limit: g.width - 2, glyphs: gl)
    }

    static func label(_ g: inout Grid, _ t: String, y: Int, _ geo: Geometry) {
        let w = geo.plotX0 - geo.chartX - 1
        g.put(t.leftPadded(w), x: geo.chartX, y: y, style: .dim, limit: w)
    }

    /// Points at their rows, joined by a dotted line.
    static func plot(_ g: inout Grid, values: [Double?], xs: [Int], top: Int, height: Int, map: (Double) -> Double,
                     marker: String, style: Style, selected: Int, _ gl: Glyphs) {
        func row(_ v: Double) -> Int {
            let f = min(1, max(0, map(v)))
            return top + height - 1 - Int((f * Double(height - 1)).rounded())
        }
        for i in 0..<max(0, values.count - 1) {
            guard let a = values[i], let b = values[i + 1] else { continue }
            let x0 = xs[i], x1 = xs[i + 1]
            guard x1 - x0 > 1 else { continue }
            for x in (x0 + 1)..<x1 {
                let t = Double(x - x0) / Double(x1 - x0)
                let fa = min(1, max(0, map(a))), fb = min(1, max(0, map(b)))
                let f = fa + (fb - fa) * t
                let y = top + height - 1 - Int((f * Double(height - 1)).rounded())
                g.put(gl.dotLine, x: x, y: y, style: Style(color: style.color, dim: true))
            }
        }
        for (i, v) in values.enumerated() {
            guard let v else { continue }
            g.put(marker, x: xs[i], y: row(v), style: i == selected ? Style(color: style.color, bold: true, reverse: true) : style)
        }
    }
}
