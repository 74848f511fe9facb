import Foundation

/// One γ of a sweep: Table 1's row and Table 2's phases. Encodes flat: the row's fields
/// at the top level, `phases` beside them.
public struct SweepRow: Encodable, Sendable {
    public var row: Table1Row
    public var phases: [PhaseCost]

    public init(row: Table1Row, phases: [PhaseCost]) {
        self.row = row
        self.phases = phases
    }

    enum CodingKeys: String, CodingKey { case phases }

    public func encode(to encoder: Encoder) throws {
        try row.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(phases, forKey: .phases)
    }
}

/// Figure 5 as SVG: estimated load cost (log scale) against γ, one line per phase, and
/// the memory reduction on a second axis.
public enum Figure5 {
    public static func svg(rows: [SweepRow], title: String) -> String {
        let w = 720.0, h = 440.0
        let left = 80.0, right = 80.0, top = 50.0, bottom = 60.0
        let pw = w - left - right, ph = h - top - bottom
        let gammas = rows.map(\.row.gamma)
        let gMin = gammas.min() ?? 0, gMax = max(gammas.max() ?? 1, gMin + 1)
        let phaseNames = rows.first?.phases.map(\.phase) ?? []
        let costs = rows.flatMap { $0.phases.map(\.estimatedCostSeconds) }.filter { $0 > 0 }
        let lo = floor(log10(costs.min() ?? 1e-4)), hi = max(ceil(log10(costs.max() ?? 1)), lo + 1)
        let reductions = rows.map(\.row.reductionPercent)
        let rLo = floor((reductions.min() ?? 0) / 5) * 5, rHi = max(ceil((reductions.max() ?? 100) / 5) * 5, rLo + 5)

        func x(_ g: Double) -> Double { left + (g - gMin) / (gMax - gMin) * pw }
        func yCost(_ c: Double) -> Double {
            let v = c > 0 ? log10(c) : lo
            return top + ph - (v - lo) / (hi - lo) * ph
        }
        func yRed(_ r: Double) -> Double { top + ph - (r - rLo) / (rHi - rLo) * ph }
        func f(_ d: Double) -> String { String(format: "%.1f", d) }
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        let colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"]
        var s = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(w))" height="\(Int(h))" viewBox="0 0 \(Int(w)) \(Int(h))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(f(w / 2))" y="24" text-anchor="middle" font-size="15">\(esc(title))</text>
        <rect x="\(f(left))" y="\(f(top))" width="\(f(pw))" height="\(f(ph))" fill="none" stroke="#444"/>

        """
        // Cost axis (left, log scale).
        var e = lo
        while e <= hi {
            let y = yCost(pow(10, e))
            s += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(left + pw))\" y2=\"\(f(y))\" stroke=\"#ddd\"/>\n"
            s += "<text x=\"\(f(left - 6))\" y=\"\(f(y + 4))\" text-anchor=\"end\">1e\(Int(e))</text>\n"
            e += 1
        }
        s += "<text transform=\"translate(20,\(f(top + ph / 2))) rotate(-90)\" text-anchor=\"middle\">estimated load cost (s, log scale)</text>\n"
        // Reduction axis (right).
        var r = rLo
        while r <= rHi {
            s += "<text x=\"\(f(left + pw + 6))\" y=\"\(f(yRed(r) + 4))\">\(Int(r))%</text>\n"
            r += 5
        }
        s += "<text transform=\"translate(\(f(w - 18)),\(f(top + ph / 2))) rotate(90)\" text-anchor=\"middle\">memory reduction</text>\n"
        // γ axis.
        for g in gammas {
            s += "<text x=\"\(f(x(g)))\" y=\"\(f(top + ph + 18))\" text-anchor=\"middle\">\(Config.format(g))</text>\n"
        }
        s += "<text x=\"\(f(left + pw / 2))\" y=\"\(f(h - 16))\" text-anchor=\"middle\">core growth bound γ (%)</text>\n"
        // One polyline per phase.
        for (i, name) in phaseNames.enumerated() {
            let pts = rows.map { row -> String in
                let c = i < row.phases.count ? row.phases[i].estimatedCostSeconds : 0
                return "\(f(x(row.row.gamma))),\(f(yCost(c)))"
            }.joined(separator: " ")
            let col = colours[i % colours.count]
            s += "<polyline class=\"phase\" fill=\"none\" stroke=\"\(col)\" stroke-width=\"2\" points=\"\(pts)\"><title>\(esc(name))</title></polyline>\n"
            s += "<line x1=\"\(f(left + 10))\" y1=\"\(f(top + 14 + Double(i) * 16))\" x2=\"\(f(left + 30))\" y2=\"\(f(top + 14 + Double(i) * 16))\" stroke=\"\(col)\" stroke-width=\"2\"/>\n"
            s += "<text x=\"\(f(left + 36))\" y=\"\(f(top + 18 + Double(i) * 16))\">\(esc(name)) cost</text>\n"
        }
        let redPts = rows.map { "\(f(x($0.row.gamma))),\(f(yRed($0.row.reductionPercent)))" }.joined(separator: " ")
        let ly = top + 14 + Double(phaseNames.count) * 16
        s += "<polyline class=\"reduction\" fill=\"none\" stroke=\"#555\" stroke-width=\"2\" stroke-dasharray=\"6 4\" points=\"\(redPts)\"/>\n"
        s += "<line x1=\"\(f(left + 10))\" y1=\"\(f(ly))\" x2=\"\(f(left + 30))\" y2=\"\(f(ly))\" stroke=\"#555\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/>\n"
        s += "<text x=\"\(f(left + 36))\" y=\"\(f(ly + 4))\">memory reduction (right axis)</text>\n"
        s += "</svg>\n"
        return s
    }
}
