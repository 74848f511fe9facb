import OvlCore

/// The configuration being explored, editable row by row, and the core set it resolves to.
enum ConfigView {
    static func draw(_ g: inout Grid, _ s: ExplorerState, _ gl: Glyphs) {
        let l = Layout(width: s.width, height: s.height)
        g.title("configuration", detail: "Enter edits · C adds a core glob, X an exclusion, D deletes one · E exports it as TOML", y: l.bodyTop, glyphs: gl)
        let rows = Lists.configRows(s)
        let (top, n) = Lists.area(s, .config)
        let cur = s.configCursor
        let labelW = g.width >= 110 ? 26 : 22
        let valueW = g.width >= 110 ? 28 : 20
        for r in 0..<n {
            let i = cur.top + r
            guard i < rows.count else { break }
            let y = top + r
            let (label, value, note, heading) = describe(rows[i], s, gl)
            if heading {
                g.put(gl.fit(label, g.width - 3), x: 1, y: y, style: Style(color: .cyan, bold: true))
                if !note.isEmpty { g.put(gl.fit(note, g.width - label.cells - 4), x: label.cells + 3, y: y, style: .dim) }
            } else {
                g.put(gl.fit(label, labelW), x: 3, y: y)
                g.put(gl.fit(value, valueW), x: 4 + labelW, y: y, style: .bold)
                g.put(gl.fit(note, max(0, g.width - labelW - valueW - 7)), x: 5 + labelW + valueW, y: y, style: .dim)
            }
            if i == cur.row { g.select(y: y) }
        }
        g.scrollMark(top: cur.top, rows: n, count: rows.count, firstRow: top, glyphs: gl)
        let foot = "saved with E (TOML): ovl analyze IMAGE --profile … --config FILE gives the same clustering"
        g.put(gl.fit(foot, g.width - 2), x: 1, y: l.bodyTop + l.bodyHeight - 1, style: .dim)
    }

    static func describe(_ row: ConfigRow, _ s: ExplorerState, _ gl: Glyphs) -> (String, String, String, Bool) {
        let c = s.config
        let a = s.analysis
        switch row {
        case .gamma: return ("\(gl.gamma) (gamma)", "\(Describe.gamma(c.gamma))%", "core may grow by this much (+ - = change it anywhere)", false)
        case .bufferSize: return ("code buffer", "\(Describe.count(c.bufferSize)) B", "no cluster is larger (B changes it anywhere)", false)
        case .buffers: return ("code buffers", "\(c.buffers)", "least recently entered is reused", false)
        case .pageSize: return ("flash page", "\(Describe.count(c.pageSize)) B", "loads read whole pages (P sets page and time)", false)
        case .pageRead: return ("page read time", "\(Describe.number(c.pageReadMicroseconds)) \(gl.micro)s", "Est. cost = pages \(gl.times) loads \(gl.times) this", false)
        case .preset:
            let resolved = c.corePreset == .auto ? (CorePresets.isLinuxKernel(s.model.program) ? " (linux)" : " (static)") : ""
            return ("core preset", c.corePreset.rawValue + resolved, "Enter cycles auto, static, linux, none", false)
        case .defragment: return ("defragment into core", c.defragmentIntoCore ? "yes" : "no", "leftover clusters may join core while it has room", false)
        case .storage: return ("storage", c.storage.rawValue, "where the rewritten image keeps clusters", false)
        case .granularity: return ("granularity", c.granularity.rawValue, "fixed once the profiles are read", false)
        case .coreHeading:
            return ("core functions (globs)", "", c.coreFunctions.isEmpty ? "none yet: Enter or C adds one" : "Enter edits, D deletes", true)
        case .core(let i):
            let n = matches(c.coreFunctions[i], s)
            return ("  " + c.coreFunctions[i], "", "\(n) function\(n == 1 ? "" : "s")", false)
        case .excludeHeading:
            return ("core exclusions", "", c.coreExclude.isEmpty ? "none: Enter or X adds one" : "taken out of core even when a glob matches", true)
        case .exclude(let i):
            return ("  " + c.coreExclude[i], "", "", false)
        case .resolvedHeading:
            let req = a?.core.reasons.values.filter { $0.origin == .required }.count ?? 0
            return ("core set now", "", "\(a?.core.count ?? 0) functions, \(req) required for correctness", true)
        case .resolved(let f):
            let fn = s.model.program.functions[Int(f)]
            let why = a?.core.reason(f).map { ($0.origin == .required ? "required: " : "") + $0.why } ?? ""
            return ("  " + fn.name, Describe.count(fn.size) + " B", why, false)
        }
    }

    static func matches(_ glob: String, _ s: ExplorerState) -> Int {
        let p = s.model.program
        if glob.hasPrefix("section:") {
            let sec = String(glob.dropFirst(8))
            return p.functions.filter { Glob.matches(sec, $0.section) }.count
        }
        return p.functions.filter { Glob.matches(glob, $0.name) || $0.aliases.contains { Glob.matches(glob, $0) } }.count
    }
}
