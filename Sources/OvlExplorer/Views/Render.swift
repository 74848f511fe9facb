import OvlCore

/// Draws a whole screen: header, tab bar, the current view, the status line, and any
/// overlay. Pure: the same state gives the same grid.
public enum Renderer {
    public static func render(_ s: ExplorerState, glyphs: Glyphs) -> Grid {
        var g = Grid(width: s.width, height: s.height)
        let l = Layout(width: s.width, height: s.height)
        if l.isTooSmall {
            let msg = ["ovl explore needs at least \(Layout.minWidth)\(glyphs.times)\(Layout.minHeight)",
                       "this terminal is \(s.width)\(glyphs.times)\(s.height)", "q quits"]
            for (i, m) in msg.enumerated() {
                let t = glyphs.fit(m, s.width)
                g.put(t, x: max(0, (s.width - t.cells) / 2), y: s.height / 2 - 1 + i, style: .bold)
            }
            return glyphs.isUnicode ? g : g.foldedToASCII()
        }
        HeaderView.draw(&g, s, glyphs)
        TabBar.draw(&g, s, glyphs, y: l.tabRow)
        if s.analysis == nil {
            let t = "clustering \(s.model.imageName)\(glyphs.ellipsis)"
            g.put(t, x: max(0, (s.width - t.cells) / 2), y: l.bodyTop + l.bodyHeight / 2, style: .bold)
        } else {
            switch s.view {
            case .partition:
                if let d = s.partition.drill.last { DrillView.draw(&g, s, d, glyphs) } else { PartitionView.draw(&g, s, glyphs) }
            case .clusters:
                if let d = s.clusters.drill.last { DrillView.draw(&g, s, d, glyphs) } else { ClusterView.draw(&g, s, glyphs) }
            case .graph: GraphView.draw(&g, s, glyphs)
            case .steps: StepView.draw(&g, s, glyphs)
            case .sweep: SweepView.draw(&g, s, glyphs)
            case .config: ConfigView.draw(&g, s, glyphs)
            }
        }
        switch s.overlay {
        case .help(let top): HelpView.draw(&g, s, glyphs, top: top)
        case .exportMenu(let c): ExportMenuView.draw(&g, s, glyphs, cursor: c)
        case nil: break
        }
        StatusLine.draw(&g, s, glyphs, y: l.statusRow)
        return glyphs.isUnicode ? g : g.foldedToASCII()
    }
}

/// Text in runs of styles, laid out left to right.
struct Spans {
    var parts: [(String, Style)] = []

    mutating func add(_ t: String, _ st: Style = .plain) { parts.append((t, st)) }

    var width: Int { parts.reduce(0) { $0 + $1.0.cells } }

    /// Draws from `x`, cut with an ellipsis at `limit` cells.
    @discardableResult
    func draw(_ g: inout Grid, x: Int, y: Int, limit: Int, glyphs: Glyphs) -> Int {
        var col = x
        let end = x + limit
        let over = width > limit
        let room = over ? limit - glyphs.ellipsis.cells : limit
        var used = 0
        for (t, st) in parts {
            if used >= room { break }
            let piece = String(String.UnicodeScalarView(t.unicodeScalars.prefix(room - used)))
            col = g.put(piece, x: col, y: y, style: st)
            used += piece.cells
        }
        if over { col = g.put(glyphs.ellipsis, x: col, y: y, limit: end - col) }
        return col
    }
}

enum HeaderView {
    /// Three lines: what is open; the configuration and the clusters; memory and cost per
    /// phase. Each line has a long and a short form; the long one is used when it fits.
    static func draw(_ g: inout Grid, _ s: ExplorerState, _ gl: Glyphs) {
        let w = g.width
        let bar = Style(bold: true, reverse: true)

        // Line 1: what is open, and how fresh the numbers are.
        g.fill(x: 0, y: 0, width: w, height: 1, style: bar)
        let right: String
        if s.isBusy { right = " clustering\(gl.ellipsis) " }
        else if let a = s.analysis, a.computedAhead { right = w >= 100 ? " clustered ahead in \(ms(a.milliseconds)) " : " ahead \(ms(a.milliseconds)) " }
        else if let a = s.analysis { right = w >= 100 ? " clustered in \(ms(a.milliseconds)) " : " \(ms(a.milliseconds)) " }
        else { right = "" }
        let room = max(0, w - right.cells)
        pick(line1(s, gl, long: true), line1(s, gl, long: false), room).draw(&g, x: 0, y: 0, limit: room, glyphs: gl)
        g.put(right, x: w - right.cells, y: 0, style: s.isBusy ? Style(color: .yellow, bold: true, reverse: true) : Style(reverse: true))
        // The page model goes first when the line is too long (the Config view shows it),
        // then core and its limit.
        let second = [line2(s, gl, long: true), line2(s, gl, long: true, page: false), line2(s, gl, long: true, core: false, page: false)]
        (second.first { $0.width <= w } ?? line2(s, gl, long: false)).draw(&g, x: 0, y: 1, limit: w, glyphs: gl)
        pick(line3(s, gl, long: true), line3(s, gl, long: false), w).draw(&g, x: 0, y: 2, limit: w, glyphs: gl)
    }

    static func pick(_ long: Spans, _ short: Spans, _ width: Int) -> Spans { long.width <= width ? long : short }

    static func line1(_ s: ExplorerState, _ gl: Glyphs, long: Bool) -> Spans {
        let m = s.model
        let bar = Style(reverse: true)
        var l = Spans()
        l.add(long ? " ovl explore  " : " ", Style(bold: true, reverse: true))
        l.add(m.imageName, Style(bold: true, reverse: true))
        var facts = "  \(Describe.count(m.program.codeBytes)) B code"
        if long { facts += " (.text \(Describe.count(m.program.textSectionBytes)) B)" }
        facts += "  \(Describe.count(m.functionCount)) \(long ? "functions" : "fn")  \(Describe.count(m.chains.count)) chains"
        facts += m.phaseLabels.isEmpty ? "  no profile" : "  \(long ? "phase\(m.phaseLabels.count == 1 ? "" : "s") " : "")\(m.phaseLabels.joined(separator: ", "))"
        l.add(facts, bar)
        return l
    }

    static func line2(_ s: ExplorerState, _ gl: Glyphs, long: Bool, core: Bool = true, page: Bool = true) -> Spans {
        let cfg = s.config
        var l = Spans()
        l.add(" \(gl.gamma) ")
        l.add("\(Describe.gamma(cfg.gamma))%", Style(color: .yellow, bold: true))
        l.add(long ? "  buffer " : "  buf ")
        l.add(long ? "\(Describe.count(cfg.bufferSize)) B" : Describe.count(cfg.bufferSize), .bold)
        if cfg.buffers > 1 { l.add(" \(gl.times)\(cfg.buffers)") }
        if page {
            l.add("  page ")
            l.add(long ? "\(Describe.count(cfg.pageSize)) B \(Describe.number(cfg.pageReadMicroseconds)) \(gl.micro)s"
                       : "\(Describe.count(cfg.pageSize))/\(Describe.number(cfg.pageReadMicroseconds))\(gl.micro)s", .bold)
        }
        guard let a = s.analysis else { return l }
        l.add(" \(gl.vertical) ")
        l.add(Describe.count(a.row.clusters), .bold)
        l.add(a.row.clusters == 1 ? (long ? " cluster, avg " : " cluster avg ") : (long ? " clusters, avg " : " clusters avg "))
        l.add(Describe.count(Int(a.row.averageClusterSize.rounded())), .bold)
        l.add(long ? ", max " : " max ")
        l.add(Describe.count(a.row.maxClusterSize), .bold)
        if long && !core { l.add(" B") }
        if long && core {
            // The bound in force is max(core × (1 + γ), buffer): say which one it is.
            let limit = CoreLimit(a.clustering)
            l.add(" B \(gl.vertical) core ")
            l.add(Describe.count(a.clustering.coreBaseBytes), .bold)
            l.add(" B \(gl.arrowRight) limit \(Describe.count(limit.bytes)) B (\(limit.byBuffer ? "buffer" : "\(gl.gamma)"))")
        }
        return l
    }

    static func line3(_ s: ExplorerState, _ gl: Glyphs, long: Bool) -> Spans {
        var l = Spans()
        guard let a = s.analysis else { return l }
        let m = s.model
        let r = a.row
        l.add(long ? " resident " : " res ")
        l.add(long ? "\(Describe.count(r.residentBytes)) B" : Describe.count(r.residentBytes), .bold)
        l.add("  total ")
        l.add(long ? "\(Describe.count(r.totalMemory)) B" : Describe.count(r.totalMemory), .bold)
        l.add(" (")
        l.add(Describe.reduction(r.reductionPercent, minus: gl.minus), Style(color: r.reductionPercent < 0 ? .red : .green, bold: true))
        l.add(long ? ")  \(gl.vertical) " : ") \(gl.vertical)")
        if a.phases.isEmpty { l.add(" no profile: no loads") }
        for (i, p) in a.phases.enumerated() {
            let label = i < m.phaseLabels.count ? m.phaseLabels[i] : p.phase
            l.add(i == 0 ? " " : "  ")
            l.add("\(label) ")
            l.add((p.exact ? "" : gl.lessEqual) + Describe.count(p.loads), .bold)
            l.add(long ? " loads " : " ")
            l.add(long ? seconds(p.estimatedCostSeconds) : shortSeconds(p.estimatedCostSeconds), Style(color: .yellow))
            // The yardstick: paging the original layout in the same memory.
            if let pg = p.paging {
                let better = p.loads <= pg.loads
                l.add(long ? " vs paging \(Describe.count(pg.loads)) " : " pg \(Describe.count(pg.loads)) ")
                l.add(long && gl.isUnicode ? AnalysisReport.pagingComparison(loads: p.loads, paging: pg.loads) : shortRatio(p.loads, pg.loads, gl),
                      Style(color: better ? .green : .red, bold: true))
            }
        }
        if long && !a.phases.allSatisfy(\.exact) { l.add("  (\(gl.lessEqual): edge-profile bound)") }
        return l
    }

    /// "12×" when paging needs 12 times the loads, "÷3" when it needs a third ("12x",
    /// "1/3" in ASCII).
    static func shortRatio(_ loads: UInt64, _ paging: UInt64, _ gl: Glyphs) -> String {
        let inf = gl.isUnicode ? "∞" : "inf", over = gl.isUnicode ? "÷" : "1/"
        if loads == 0 { return paging == 0 ? "=" : "\(inf)\(gl.times)" }
        if paging == 0 { return "\(over)\(inf)" }
        let r = Double(paging) / Double(loads)
        func f(_ v: Double) -> String { v >= 10 ? String(format: "%.0f", v) : String(format: "%.1f", v) }
        return r >= 1 ? "\(f(r))\(gl.times)" : "\(over)\(f(1 / r))"
    }

    static func shortSeconds(_ v: Double) -> String {
        if v == 0 { return "0s" }
        if v < 0.01 { return String(format: "%.1fms", v * 1000) }
        if v < 10 { return String(format: "%.2fs", v) }
        return String(format: "%.0fs", v)
    }

    static func ms(_ v: Double) -> String {
        v < 10 ? String(format: "%.1f ms", v) : String(format: "%.0f ms", v)
    }

    static func seconds(_ v: Double) -> String {
        if v == 0 { return "0 s" }
        if v < 0.001 { return String(format: "%.2f ms", v * 1000) }
        if v < 10 { return String(format: "%.3f s", v) }
        return String(format: "%.1f s", v)
    }
}

/// The row of view names under the header.
enum TabBar {
    static func label(_ v: ViewID) -> String { " \(v.rawValue) \(v.title) " }

    /// Screen columns of each tab.
    static func ranges(width: Int) -> [(ViewID, Range<Int>)] {
        var x = 1
        var out: [(ViewID, Range<Int>)] = []
        for v in ViewID.allCases {
            let n = label(v).cells
            out.append((v, x..<(x + n)))
            x += n + 1
        }
        return out
    }

    static func draw(_ g: inout Grid, _ s: ExplorerState, _ gl: Glyphs, y: Int) {
        g.fill(x: 0, y: y, width: g.width, height: 1, char: gl.horizontal.unicodeScalars.first!, style: .dim)
        for (v, r) in ranges(width: g.width) where r.upperBound <= g.width {
            let on = v == s.view
            g.put(label(v), x: r.lowerBound, y: y, style: on ? Style(color: .cyan, bold: true, reverse: true) : .plain)
        }
        // Where the list is drilled to, and the edit history.
        var crumbs: [String] = []
        if s.view == .partition || s.view == .clusters {
            for d in Lists.drillStack(s, s.view) {
                switch d {
                case .chains: crumbs.append("chains")
                case .blocks: crumbs.append("blocks")
                case .disassembly: crumbs.append("disassembly")
                }
            }
        }
        var right = crumbs.isEmpty ? "" : " " + crumbs.joined(separator: " \(gl.arrowRight) ") + " "
        if !s.undoStack.isEmpty || !s.redoStack.isEmpty {
            right += " \(s.undoStack.count) edit\(s.undoStack.count == 1 ? "" : "s")\(s.redoStack.isEmpty ? "" : ", \(s.redoStack.count) to redo") "
        }
        let start = (ranges(width: g.width).last?.1.upperBound ?? 0) + 2
        if !right.isEmpty && g.width - right.cells > start {
            g.put(right, x: g.width - right.cells - 1, y: y, style: .plain)
        }
    }
}

enum StatusLine {
    /// Text with γ spelt out on ASCII terminals.
    static func words(_ t: String, _ gl: Glyphs) -> String {
        gl.isUnicode ? t : t.replacingOccurrences(of: "γ", with: "gamma").replacingOccurrences(of: "µ", with: "u")
    }

    static func draw(_ g: inout Grid, _ s: ExplorerState, _ gl: Glyphs, y: Int) {
        let w = g.width
        g.fill(x: 0, y: y, width: w, height: 1, style: Style(reverse: true))
        if let p = s.prompt {
            var sp = Spans()
            sp.add(" \(words(p.label, gl)): ", Style(bold: true, reverse: true))
            // A selected old value is drawn highlighted: typing replaces it.
            sp.add(p.text, p.selected ? Style(color: .cyan, bold: true) : Style(reverse: true))
            sp.add(gl.isUnicode ? "▏" : "_", Style(bold: true, reverse: true))
            let help = "  Enter accepts, Esc cancels "
            let x = sp.draw(&g, x: 0, y: y, limit: max(0, w - help.cells), glyphs: gl)
            if x + help.cells <= w { g.put(help, x: w - help.cells, y: y, style: Style(reverse: true, dim: true)) }
            return
        }
        var sp = Spans()
        if let m = s.message {
            sp.add(" " + words(m.text, gl) + " ", m.isError ? Style(color: .red, bold: true, reverse: true) : Style(bold: true, reverse: true))
            sp.add(gl.vertical, Style(reverse: true))
        }
        let ctx = s.overlay != nil ? [] : Explorer.contexts(s)
        var hints = KeyTable.hints(for: ctx, ascii: !gl.isUnicode)
        if s.overlay != nil { hints = [("q", "close")] }
        for (k, t) in hints {
            sp.add(" " + k, Style(color: .cyan, bold: true, reverse: true))
            sp.add(" " + t, Style(reverse: true))
        }
        sp.draw(&g, x: 0, y: y, limit: w, glyphs: gl)
    }
}

enum HelpView {
    static func draw(_ g: inout Grid, _ s: ExplorerState, _ gl: Glyphs, top: Int) {
        let l = Layout(width: s.width, height: s.height)
        g.fill(x: 0, y: l.bodyTop, width: g.width, height: l.bodyHeight)
        g.title("Keys", detail: "lower-case keys look, upper-case keys (and + - Space) change the configuration; u undoes", y: l.bodyTop, glyphs: gl)
        let lines = KeyTable.helpLines(ascii: !gl.isUnicode)
        let rows = max(1, l.bodyHeight - 2)
        let keyWidth = min(22, max(12, lines.map(\.key.cells).max() ?? 12))
        for r in 0..<rows {
            let i = top + r
            guard i < lines.count else { break }
            let y = l.bodyTop + 1 + r
            let line = lines[i]
            if line.heading {
                g.put(line.text, x: 1, y: y, style: Style(color: .cyan, bold: true))
            } else {
                g.put(gl.fit(line.key, keyWidth), x: 3, y: y, style: .bold)
                g.put(gl.fit(line.text, g.width - keyWidth - 6), x: 4 + keyWidth, y: y)
            }
        }
        g.scrollMark(top: top, rows: rows, count: lines.count, firstRow: l.bodyTop + 1, glyphs: gl)
        let foot = "\(min(lines.count, top + rows)) of \(lines.count) lines · j/k scroll · any other key closes"
        g.put(gl.fit(foot, g.width - 2), x: 1, y: l.bodyTop + l.bodyHeight - 1, style: .dim)
    }
}

enum ExportMenuView {
    static func box(_ l: Layout) -> (x: Int, y: Int, w: Int, h: Int) {
        let w = min(l.width - 4, 76)
        let h = ExportKind.allCases.count + 4
        return ((l.width - w) / 2, l.bodyTop + max(0, (l.bodyHeight - h) / 2), w, h)
    }

    static func draw(_ g: inout Grid, _ s: ExplorerState, _ gl: Glyphs, cursor: Int) {
        let l = Layout(width: s.width, height: s.height)
        let b = box(l)
        Frame.draw(&g, x: b.x, y: b.y, w: b.w, h: b.h, title: "Export", glyphs: gl)
        g.put(gl.fit("Writes what is shown now: press a key (or Enter), then give a file name.", b.w - 4), x: b.x + 2, y: b.y + 1, style: .dim)
        for (i, k) in ExportKind.allCases.enumerated() {
            let y = b.y + 2 + i
            var note = ""
            var enabled = true
            switch k {
            case .toml: note = "for ovl analyze --config"
            case .dot: note = "the whole graph, for dot -Tsvg"
            case .ldScript:
                enabled = s.config.granularity == .function
                note = enabled ? "for -ffunction-sections builds" : "needs --granularity function"
            case .rewrittenImage:
                note = "runnable, as ovl rewrite"
            }
            let st: Style = enabled ? .plain : .dim
            g.put(" \(k.key) ", x: b.x + 2, y: y, style: enabled ? Style(color: .cyan, bold: true) : .dim)
            let titleW = max(10, min(36, b.w - 8 - 30))
            g.put(gl.fit(k.title, titleW), x: b.x + 6, y: y, style: st)
            g.put(gl.fit(note, b.w - 8 - titleW), x: b.x + 6 + titleW + 1, y: y, style: .dim)
            if i == cursor { g.restyle(y: y, x: b.x + 1, width: b.w - 2) { $0.reverse = true } }
        }
    }
}

enum Frame {
    /// A box with a title in its top edge; the inside is cleared.
    static func draw(_ g: inout Grid, x: Int, y: Int, w: Int, h: Int, title: String, glyphs gl: Glyphs, style: Style = .plain) {
        guard w >= 2, h >= 2 else { return }
        g.fill(x: x, y: y, width: w, height: h)
        let hl = String(repeating: gl.horizontal, count: w - 2)
        g.put(gl.topLeft + hl + gl.topRight, x: x, y: y, style: style)
        g.put(gl.bottomLeft + hl + gl.bottomRight, x: x, y: y + h - 1, style: style)
        for r in 1..<(h - 1) {
            g.put(gl.vertical, x: x, y: y + r, style: style)
            g.put(gl.vertical, x: x + w - 1, y: y + r, style: style)
        }
        if !title.isEmpty { g.put(" \(gl.fit(title, w - 4)) ", x: x + 1, y: y, style: Style(bold: true)) }
    }
}

/// The size core may grow to in Figure 2: max(core × (1 + γ), BufSz), and which of the two
/// it is (a core smaller than the buffer may grow to the buffer's size whatever γ is).
struct CoreLimit {
    let bytes: Int
    let byBuffer: Bool

    init(_ c: Clustering) {
        byBuffer = c.parameters.bufferSize > c.coreLimit
        bytes = max(c.coreLimit, c.parameters.bufferSize)
    }
}
