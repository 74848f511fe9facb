import Foundation

/// Names and numbers as the reports print them.
public enum Describe {
    /// `function` or `function+0x1c`: where a chain starts.
    public static func chain(_ c: Int, session s: Session) -> String {
        let b = Int(s.chains.firstBlock[c])
        let f = s.program.functions[Int(s.program.blockFunction[b])]
        let off = s.program.blockStart[b] - f.address
        return off == 0 ? f.name : "\(f.name)+0x\(String(off, radix: 16))"
    }

    /// 12,345
    public static func count<T: BinaryInteger>(_ n: T) -> String {
        let s = String(n.magnitude)
        var out = ""
        for (i, ch) in s.reversed().enumerated() {
            if i > 0 && i % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return (n < 0 ? "-" : "") + String(out.reversed())
    }

    public static func percent(_ d: Double) -> String { String(format: "%.1f%%", d) }

    /// "1 cluster", "14 clusters" (thousands separated).
    public static func count<T: BinaryInteger>(_ n: T, _ noun: String) -> String {
        "\(count(n)) \(noun)\(n == 1 ? "" : "s")"
    }

    /// A memory reduction as a change: "−81.5%" for less memory, "+4.0%" for more.
    public static func reduction(_ d: Double, minus: String = "−") -> String {
        d < 0 ? "+" + percent(-d) : minus + percent(d)
    }

    public static func gamma(_ g: Double) -> String { Config.format(g) }

    /// A table with right-aligned numeric columns.
    public static func table(_ header: [String], _ rows: [[String]], leftAligned: Set<Int> = []) -> String {
        var width = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() where i < width.count { width[i] = max(width[i], c.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                let pad = String(repeating: " ", count: max(0, width[i] - c.count))
                return leftAligned.contains(i) ? c + pad : pad + c
            }.joined(separator: "  ")
        }
        // Trailing blanks trimmed by hand: a regular expression here loaded ICU's tables, a
        // few milliseconds of every command that prints a table.
        func trimmed(_ l: String) -> Substring {
            var end = l.endIndex
            while end > l.startIndex, l[l.index(before: end)].isWhitespace { end = l.index(before: end) }
            return l[..<end]
        }
        return ([line(header)] + rows.map(line)).map(trimmed).joined(separator: "\n") + "\n"
    }
}
