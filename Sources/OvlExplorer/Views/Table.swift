/// Columns of a list: fixed widths, one flexible column taking what is left, numbers
/// right-aligned. Shared by every list view so headers and rows line up.
struct Columns {
    struct Column {
        var title: String
        var width: Int
        var right: Bool
        var isFlex: Bool

        static func fixed(_ title: String, _ width: Int, right: Bool = true) -> Column {
            Column(title: title, width: width, right: right, isFlex: false)
        }

        static func flex(_ title: String, min width: Int) -> Column {
            Column(title: title, width: width, right: false, isFlex: true)
        }
    }

    let columns: [Column]
    let xs: [Int]
    let widths: [Int]

    /// Lays the columns out from `x` over `total` cells, one blank between columns.
    init(_ columns: [Column], x: Int = 1, total: Int) {
        self.columns = columns
        let fixed = columns.filter { !$0.isFlex }.reduce(0) { $0 + $1.width } + max(0, columns.count - 1)
        let flexCount = columns.filter(\.isFlex).count
        let spare = max(0, total - fixed)
        var ws: [Int] = []
        var given = 0
        for c in columns {
            if c.isFlex {
                let w = max(c.width, flexCount == 0 ? 0 : spare / flexCount)
                ws.append(w)
                given += w
            } else {
                ws.append(c.width)
            }
        }
        var xx: [Int] = []
        var cur = x
        for w in ws {
            xx.append(cur)
            cur += w + 1
        }
        xs = xx
        widths = ws
    }

    /// The header row, with the sort marker on column `sorted`.
    func header(_ g: inout Grid, y: Int, glyphs: Glyphs, sorted: Int? = nil, descending: Bool = true) {
        let x0 = max(0, xs[0] - 1), x1 = min(g.width, xs[xs.count - 1] + widths[widths.count - 1] + 1)
        g.fill(x: x0, y: y, width: x1 - x0, height: 1, style: Style(bold: true, underline: true))
        for (i, c) in columns.enumerated() {
            var t = c.title
            if i == sorted { t += descending ? glyphs.sortDown : glyphs.sortUp }
            put(&g, i, t, y: y, style: Style(bold: true, underline: true), glyphs: glyphs)
        }
    }

    /// One cell, cut to its column and aligned.
    func put(_ g: inout Grid, _ i: Int, _ text: String, y: Int, style: Style = .plain, glyphs: Glyphs) {
        let w = widths[i]
        let t = glyphs.fit(text, w)
        let x = columns[i].right ? xs[i] + w - t.cells : xs[i]
        g.put(t, x: x, y: y, style: style, limit: w)
    }
}

extension Grid {
    /// Marks row `y` as the selection: reversed, keeping each cell's colour.
    mutating func select(y: Int) {
        restyle(y: y) { $0.reverse = true; $0.dim = false }
    }

    /// A title line: bold text, then dimmed detail.
    mutating func title(_ text: String, detail: String = "", y: Int, glyphs: Glyphs) {
        let x = put(glyphs.fit(text, width - 2), x: 1, y: y, style: .bold)
        if !detail.isEmpty { put(glyphs.fit("  " + detail, width - x - 1), x: x, y: y, style: .plain) }
    }

    /// A scroll position marker at the right end of a list's rows.
    mutating func scrollMark(top: Int, rows: Int, count: Int, firstRow: Int, glyphs: Glyphs) {
        guard count > rows, rows > 1 else { return }
        let span = max(1, rows * rows / count)
        let pos = (rows - span) * top / max(1, count - rows)
        for r in 0..<rows {
            let on = r >= pos && r < pos + span
            put(on ? glyphs.vertical : " ", x: width - 1, y: firstRow + r, style: on ? Style(bold: true) : .dim)
        }
    }
}
