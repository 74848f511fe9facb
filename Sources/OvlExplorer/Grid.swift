/// The seven ANSI colours the explorer uses; `.none` is the terminal's default.
public enum Color: UInt8, Sendable, CaseIterable {
    case none = 0, red, green, yellow, blue, magenta, cyan, white
}

/// How a cell is drawn. Colours are dropped by the front end under `NO_COLOR`; the
/// attributes stay, so the selection and headings remain visible without colour.
public struct Style: Equatable, Hashable, Sendable {
    public var color: Color = .none
    public var bold = false
    public var reverse = false
    public var underline = false
    public var dim = false

    public init(color: Color = .none, bold: Bool = false, reverse: Bool = false, underline: Bool = false, dim: Bool = false) {
        self.color = color
        self.bold = bold
        self.reverse = reverse
        self.underline = underline
        self.dim = dim
    }

    public static let plain = Style()
    public static let bold = Style(bold: true)
    public static let dim = Style(dim: true)
    /// The selected row of a list.
    public static let selected = Style(reverse: true)
}

/// One character cell.
public struct Cell: Equatable, Sendable {
    public var char: Unicode.Scalar
    public var style: Style

    public static let blank = Cell(char: " ", style: .plain)
}

/// A screen as a plain grid of cells: every view draws into one, tests read it as text,
/// and the ncurses front end copies it to the terminal. Every Unicode scalar takes one
/// cell (the explorer draws only single-width characters).
public struct Grid: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public private(set) var cells: [Cell]

    public init(width: Int, height: Int) {
        self.width = max(0, width)
        self.height = max(0, height)
        cells = [Cell](repeating: .blank, count: self.width * self.height)
    }

    public subscript(x x: Int, y y: Int) -> Cell {
        get { cells[y * width + x] }
        set { cells[y * width + x] = newValue }
    }

    /// Writes `text` at (x, y), clipped to the grid and to `limit` cells when given.
    /// Returns the column after the last cell written.
    @discardableResult
    public mutating func put(_ text: String, x: Int, y: Int, style: Style = .plain, limit: Int? = nil) -> Int {
        guard y >= 0 && y < height else { return x }
        let end = min(width, limit.map { x + max(0, $0) } ?? width)
        var col = x
        for var s in text.unicodeScalars {
            if col >= end { break }
            if s.value < 0x20 || (s.value >= 0x7f && s.value < 0xa0) { s = "?" }
            if col >= 0 { cells[y * width + col] = Cell(char: s, style: style) }
            col += 1
        }
        return col
    }

    /// Fills a rectangle with one character.
    public mutating func fill(x: Int, y: Int, width w: Int, height h: Int, char: Unicode.Scalar = " ", style: Style = .plain) {
        let x0 = max(0, x), x1 = min(width, x + w), y0 = max(0, y), y1 = min(height, y + h)
        guard x0 < x1, y0 < y1 else { return }
        for yy in y0..<y1 { for xx in x0..<x1 { cells[yy * width + xx] = Cell(char: char, style: style) } }
    }

    /// Changes the style of a run of cells, keeping their characters.
    public mutating func restyle(y: Int, x: Int = 0, width w: Int? = nil, _ change: (inout Style) -> Void) {
        guard y >= 0 && y < height else { return }
        let x0 = max(0, x), x1 = min(width, w.map { x + $0 } ?? width)
        guard x0 < x1 else { return }
        for xx in x0..<x1 { change(&cells[y * width + xx].style) }
    }

    /// One row as text, trailing blanks removed.
    public func row(_ y: Int) -> String {
        var s = String.UnicodeScalarView()
        for x in 0..<width { s.append(cells[y * width + x].char) }
        var out = String(s)
        while out.last == " " { out.removeLast() }
        return out
    }

    /// The whole grid as text: one line per row, trailing blanks removed.
    public var text: String { (0..<height).map(row).joined(separator: "\n") }

    /// The grid with every non-ASCII character replaced by an ASCII look-alike (one cell
    /// each): the last step of drawing for terminals without UTF-8.
    public func foldedToASCII() -> Grid {
        var g = self
        for i in g.cells.indices where !g.cells[i].char.isASCII {
            g.cells[i].char = Grid.asciiFold[g.cells[i].char] ?? "?"
        }
        return g
    }

    static let asciiFold: [Unicode.Scalar: Unicode.Scalar] = [
        "γ": "g", "µ": "u", "×": "x", "→": ">", "←": "<", "↑": "^", "↓": "v", "…": "~", "≤": "<", "≈": "~",
        "−": "-", "▲": "^", "▼": "v", "▶": ">", "●": "*", "◆": "+", "·": ".", "─": "-", "━": "=", "│": "|",
        "┌": "+", "┐": "+", "└": "+", "┘": "+", "├": "+", "┤": "+", "┬": "+", "┴": "+", "┼": "+",
        "█": "#", "░": ".", "▏": "|",
    ]

    /// Runs of equal style in row `y`: what the front end draws in one call each.
    public func runs(inRow y: Int) -> [(x: Int, scalars: [Unicode.Scalar], style: Style)] {
        var out: [(x: Int, scalars: [Unicode.Scalar], style: Style)] = []
        var x = 0
        while x < width {
            let st = cells[y * width + x].style
            var chars: [Unicode.Scalar] = []
            let start = x
            while x < width && cells[y * width + x].style == st {
                chars.append(cells[y * width + x].char)
                x += 1
            }
            out.append((start, chars, st))
        }
        return out
    }
}
