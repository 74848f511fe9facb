import OvlCore

/// The cluster graph around one cluster: its neighbours with the weights of the edges
/// to them, joined into a box for the centre; moving to a neighbour re-centres.
enum GraphView {
    static func nodeName(_ n: Int32, _ a: Analysis, _ m: ExplorerModel) -> String {
        if n == a.residentNode { return "resident" }
        let first = a.clustering.clusterChains[Int(n)].first.map { m.chainName(Int($0)) } ?? ""
        return "c\(n) \(first)"
    }

    static func nodeSize(_ n: Int32, _ a: Analysis) -> Int {
        n == a.residentNode ? a.clustering.residentCodeBytes : Int(a.clustering.clusterSize[Int(n)])
    }

    static func nodeLoads(_ n: Int32, _ a: Analysis) -> UInt64 {
        n == a.residentNode ? 0 : a.clusterLoads[Int(n)]
    }

    static func draw(_ g: inout Grid, _ s: ExplorerState, _ gl: Glyphs) {
        guard let a = s.analysis, let center = Lists.graphCenter(s) else { return }
        let m = s.model
        let l = Layout(width: s.width, height: s.height)
        let nbs = a.adjacency.neighbours[Int(center)]
        let isResident = center == a.residentNode
        let total = nbs.reduce(UInt64(0)) { $0 + $1.weight }
        g.title(isResident ? "around the resident code" : "around cluster c\(center)",
                detail: "\(nbs.count) neighbour\(nbs.count == 1 ? "" : "s"), \(Describe.count(total)) transfers across its edges, \(Describe.count(a.adjacency.internalWeight[Int(center)])) inside" + (s.graph.path.isEmpty ? "" : "  \(gl.vertical) \(s.graph.path.count) step\(s.graph.path.count == 1 ? "" : "s") from the start"),
                y: l.bodyTop, glyphs: gl)

        let boxW = g.width >= 110 ? 32 : 24
        let trunkX = g.width - boxW - 7
        let cols = Columns([
            .flex("neighbour", min: 10),
            .fixed("size", 7),
            .fixed("loads", 7),
            .fixed("weight", 9),
        ], total: min(trunkX - 3, g.width >= 110 ? 64 : 46))
        cols.header(&g, y: l.bodyTop + 1, glyphs: gl)
        let (top, rows) = Lists.area(s, .graph)
        let cur = s.graph.cursor
        let maxW = max(1, nbs.first?.weight ?? 1)
        var rowYs: [Int] = []
        for r in 0..<rows {
            let i = cur.top + r
            guard i < nbs.count else { break }
            let (n, w) = nbs[i]
            let y = top + r
            rowYs.append(y)
            let st: Style = n == a.residentNode ? Style(color: .cyan) : .plain
            cols.put(&g, 0, nodeName(n, a, m), y: y, style: st, glyphs: gl)
            cols.put(&g, 1, Describe.count(nodeSize(n, a)), y: y, glyphs: gl)
            let loads = nodeLoads(n, a)
            cols.put(&g, 2, loads == 0 ? "-" : Describe.count(loads), y: y, style: loads == 0 ? .dim : .plain, glyphs: gl)
            let frac = Double(w) / Double(maxW)
            cols.put(&g, 3, Describe.count(w), y: y, style: w == 0 ? .dim : Style(color: frac > 0.5 ? .red : frac > 0.1 ? .yellow : .none, bold: frac > 0.5), glyphs: gl)
            // The edge, drawn up to the trunk: heavier edges are drawn bolder.
            let x0 = cols.xs[3] + cols.widths[3] + 1
            if trunkX > x0 {
                let edge = String(repeating: w == 0 ? gl.dotLine : frac > 0.5 ? gl.heavyHorizontal : gl.horizontal, count: trunkX - x0)
                g.put(edge, x: x0, y: y, style: w == 0 ? .dim : Style(bold: frac > 0.5))
            }
            if i == cur.row { g.restyle(y: y, x: 0, width: trunkX) { $0.reverse = true; $0.dim = false } }
        }
        if nbs.isEmpty { g.put("no edges: nothing transfers into or out of this node", x: 2, y: top, style: .dim) }

        // The centre.
        let boxX = trunkX + 5
        let boxY = top
        let boxH = min(9, max(5, rows))
        let mid = boxY + boxH / 2
        // The trunk joining the edges to the box.
        if !rowYs.isEmpty {
            let y0 = min(rowYs.first!, mid), y1 = max(rowYs.last!, mid)
            for y in y0...y1 {
                let left = rowYs.contains(y), right = y == mid, up = y > y0, down = y < y1
                g.put(junction(left: left, right: right, up: up, down: down, gl), x: trunkX, y: y)
            }
            g.put(String(repeating: gl.horizontal, count: boxX - trunkX - 1), x: trunkX + 1, y: mid)
        }
        Frame.draw(&g, x: boxX, y: boxY, w: boxW, h: boxH, title: isResident ? "resident" : "c\(center)", glyphs: gl, style: Style(color: .cyan))
        if !rowYs.isEmpty { g.put(gl.teeRight, x: boxX, y: mid, style: Style(color: .cyan)) }
        var lines: [(String, Style)] = []
        let size = nodeSize(center, a)
        if isResident {
            lines.append(("\(Describe.count(size)) B resident", .bold))
            lines.append(("limit \(Describe.count(a.clustering.coreLimit)) B", .plain))
            lines.append(("core + hot + oversize", .dim))
        } else {
            let k = Int(center)
            lines.append(("\(Describe.count(size)) / \(Describe.count(s.config.bufferSize)) B", .bold))
            lines.append((gl.bar(Double(size) / Double(max(1, s.config.bufferSize)), width: boxW - 4, empty: true), Style(color: .cyan)))
            lines.append(("\(Describe.count(a.clustering.clusterChains[k].count, "chain")), \(Describe.count(a.clusterFunctionCount[k], "function"))", .plain))
            lines.append(("\(Describe.count(a.clusterLoads[k], "load")), \(HeaderView.seconds(a.clusterSeconds[k]))", .plain))
            lines.append((a.clustering.clusterChains[k].first.map { m.chainName(Int($0)) } ?? "", .dim))
        }
        for (i, (t, st)) in lines.enumerated() where i < boxH - 2 {
            g.put(gl.fit(t, boxW - 4), x: boxX + 2, y: boxY + 1 + i, style: st)
        }
        // A look one step further: the selected neighbour's heaviest edges.
        let py = boxY + boxH + 1
        let bottom = l.bodyTop + l.bodyHeight
        if cur.row < nbs.count, py + 1 < bottom {
            let n = nbs[cur.row].node
            let others = a.adjacency.neighbours[Int(n)].filter { $0.node != center }
            let next = others.filter { $0.weight > 0 }
            let idle = others.count - next.count
            g.put(gl.fit("beyond \(n == a.residentNode ? "resident" : "c\(n)"):" + (idle > 0 ? " (+\(idle) edge\(idle == 1 ? "" : "s") never taken)" : ""), g.width - trunkX - 2), x: trunkX + 1, y: py, style: .bold)
            for (j, e) in next.prefix(max(0, bottom - py - 1)).enumerated() {
                let name = e.node == a.residentNode ? "resident" : "c\(e.node)"
                let t = "\(gl.horizontal)\(gl.horizontal) \(name.padded(9)) \(Describe.count(e.weight).leftPadded(9))"
                g.put(gl.fit(t, g.width - trunkX - 2), x: trunkX + 1, y: py + 1 + j, style: e.weight == 0 ? .dim : .plain)
            }
            if next.isEmpty { g.put("(no other edge ran)", x: trunkX + 1, y: py + 1, style: .dim) }
        }
    }

    static func junction(left: Bool, right: Bool, up: Bool, down: Bool, _ gl: Glyphs) -> String {
        guard gl.isUnicode else {
            if !left && !right { return "|" }
            if !up && !down { return "-" }
            return "+"
        }
        switch (left, right, up, down) {
        case (true, true, true, true): return "┼"
        case (true, false, true, true): return "┤"
        case (false, true, true, true): return "├"
        case (true, true, false, true): return "┬"
        case (true, true, true, false): return "┴"
        case (true, false, false, true): return "┐"
        case (true, false, true, false): return "┘"
        case (false, true, false, true): return "┌"
        case (false, true, true, false): return "└"
        case (false, false, _, _): return "│"
        default: return "─"
        }
    }
}
