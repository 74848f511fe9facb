/// The characters bars, boxes and markers are drawn with: Unicode block and box-drawing
/// characters when the terminal's locale is UTF-8, plain ASCII otherwise (or with
/// `--ascii`). Views never write a non-ASCII character except through this table.
public struct Glyphs: Sendable, Equatable {
    public var isUnicode: Bool
    public var horizontal: String
    public var heavyHorizontal: String
    public var vertical: String
    public var topLeft: String, topRight: String, bottomLeft: String, bottomRight: String
    public var teeLeft: String, teeRight: String
    /// A full bar cell and the partial cells of 1/8 … 7/8 (empty in ASCII: whole cells only).
    public var barFull: String
    public var barEighths: [String]
    /// The unused part of a bar drawn against a limit (buffer size).
    public var barEmpty: String
    public var ellipsis: String
    public var gamma: String
    public var micro: String
    public var times: String
    public var arrowRight: String
    public var arrowLeft: String
    public var sortDown: String
    public var sortUp: String
    public var lessEqual: String
    public var greater: String
    public var approx: String
    public var minus: String
    public var marker: String
    public var point: String
    public var secondPoint: String
    public var cursorMark: String
    public var dotLine: String

    public static let unicode = Glyphs(
        isUnicode: true, horizontal: "─", heavyHorizontal: "━", vertical: "│", topLeft: "┌", topRight: "┐", bottomLeft: "└", bottomRight: "┘",
        teeLeft: "├", teeRight: "┤", barFull: "█", barEighths: ["▏", "▎", "▍", "▌", "▋", "▊", "▉"], barEmpty: "░",
        ellipsis: "…", gamma: "γ", micro: "µ", times: "×", arrowRight: "→", arrowLeft: "←", sortDown: "▼", sortUp: "▲",
        lessEqual: "≤", greater: ">", approx: "≈", minus: "−", marker: "▶", point: "●", secondPoint: "◆", cursorMark: "▏",
        dotLine: "·")

    public static let ascii = Glyphs(
        isUnicode: false, horizontal: "-", heavyHorizontal: "=", vertical: "|", topLeft: "+", topRight: "+", bottomLeft: "+", bottomRight: "+",
        teeLeft: "+", teeRight: "+", barFull: "#", barEighths: [], barEmpty: ".",
        ellipsis: "~", gamma: "gamma", micro: "u", times: "x", arrowRight: "->", arrowLeft: "<-", sortDown: "v", sortUp: "^",
        lessEqual: "<=", greater: ">", approx: "~", minus: "-", marker: ">", point: "*", secondPoint: "+", cursorMark: "_",
        dotLine: ".")

    /// A bar of `fraction` (0…1) of `width` cells, with eighth-cell resolution in Unicode.
    public func bar(_ fraction: Double, width: Int, empty: Bool = false) -> String {
        guard width > 0 else { return "" }
        let f = fraction.isFinite ? min(1, max(0, fraction)) : 0
        let eighths = Int((f * Double(width) * 8).rounded())
        var full = eighths / 8
        var rest = eighths % 8
        if barEighths.isEmpty {
            full = Int((f * Double(width)).rounded())
            rest = 0
        }
        var s = String(repeating: barFull, count: full)
        var used = full
        if rest > 0 && used < width {
            s += barEighths[rest - 1]
            used += 1
        }
        if f > 0 && used == 0 {
            s += barEighths.isEmpty ? barFull : barEighths[0]
            used = 1
        }
        if used < width { s += String(repeating: empty ? barEmpty : " ", count: width - used) }
        return s
    }

    /// `text` cut to `width` cells with an ellipsis when it does not fit.
    public func fit(_ text: String, _ width: Int) -> String {
        guard width > 0 else { return "" }
        let n = text.unicodeScalars.count
        if n <= width { return text }
        let e = ellipsis.unicodeScalars.count
        if width <= e { return String(String.UnicodeScalarView(text.unicodeScalars.prefix(width))) }
        return String(String.UnicodeScalarView(text.unicodeScalars.prefix(width - e))) + ellipsis
    }
}

extension String {
    /// Width in cells (one per Unicode scalar, as `Grid` draws).
    var cells: Int { unicodeScalars.count }

    func padded(_ width: Int) -> String {
        let n = cells
        return n >= width ? self : self + String(repeating: " ", count: width - n)
    }

    func leftPadded(_ width: Int) -> String {
        let n = cells
        return n >= width ? self : String(repeating: " ", count: width - n) + self
    }
}
