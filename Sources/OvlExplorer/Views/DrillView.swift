import OvlCore

/// Drilled in from a function or a cluster: its chains, a chain's blocks, a block's
/// disassembly.
enum DrillView {
    static func draw(_ g: inout Grid, _ s: ExplorerState, _ level: DrillLevel, _ gl: Glyphs) {
        guard let a = s.analysis else { return }
        switch level {
        case .chains(let src, let cur): chains(&g, s, a, src, cur, gl)
        case .blocks(let ch, let cur): blocks(&g, s, a, Int(ch), cur, gl)
        case .disassembly(let b, let cur): disassembly(&g, s, a, Int(b), cur, gl)
        }
    }

    /// Where a chain is: core, hot, oversize, or its cluster.
    static func place(_ ch: Int, _ a: Analysis) -> (String, Style) {
        switch a.clustering.chainState[ch] {
        case .core: return ("core", Style(color: .cyan))
        case .hot: return ("hot", Style(color: .red))
        case .oversize: return ("oversize", Style(color: .magenta))
        case .cold: return ("c\(a.clustering.chainCluster[ch])", Style(color: .blue))
        }
    }

    static func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

    // MARK: Chains

    static func chains(_ g: inout Grid, _ s: ExplorerState, _ a: Analysis, _ src: ChainSource, _ cur: ListCursor, _ gl: Glyphs) {
        let m = s.model
        let l = Layout(width: s.width, height: s.height)
        let list = Lists.chains(of: src, s)
        let bytes = list.reduce(0) { $0 + Int(m.chains.bytes[Int($1)]) }
        switch src {
        case .function(let f):
            let fn = m.program.functions[Int(f)]
            g.title("function \(fn.name)", detail: "\(hex(fn.address))  \(Describe.count(fn.size)) B  \(list.count) chain\(list.count == 1 ? "" : "s")  \(fn.section)", y: l.bodyTop, glyphs: gl)
        case .cluster(let low):
            let k = a.clustering.chainCluster[Int(low)]
            if k < 0 {
                g.title("resident code", detail: "(the cluster of \(m.chainName(Int(low))) joined core)  \(Describe.count(list.count, "chain")), \(Describe.count(bytes)) B of instructions", y: l.bodyTop, glyphs: gl)
            } else {
                let loads = a.clusterLoads[Int(k)]
                g.title("cluster c\(k)", detail: "\(Describe.count(Int(a.clustering.clusterSize[Int(k)]))) of \(Describe.count(s.config.bufferSize)) B with stubs  \(Describe.count(list.count, "chain"))  \(Describe.count(loads, "load"))  \(HeaderView.seconds(a.clusterSeconds[Int(k)]))", y: l.bodyTop, glyphs: gl)
            }
        case .resident:
            g.title("resident code", detail: "\(Describe.count(list.count, "chain")), \(Describe.count(bytes)) B of instructions", y: l.bodyTop, glyphs: gl)
        }
        let wide = g.width >= 110
        let cols = Columns([
            .flex("chain", min: 14),
            .fixed("address", wide ? 18 : 9, right: false),
            .fixed("bytes", 6),
            .fixed("blocks", 6),
            .fixed("runs", wide ? 11 : 8),
            .fixed("loads", 7),
            .fixed("state", wide ? 12 : 8, right: false),
        ], total: g.width - 2)
        cols.header(&g, y: l.bodyTop + 1, glyphs: gl)
        let (top, rows) = Lists.area(s, .drill(s.view))
        for r in 0..<rows {
            let i = cur.top + r
            guard i < list.count else { break }
            let ch = Int(list[i])
            let y = top + r
            let (pt, ps) = place(ch, a)
            cols.put(&g, 0, m.chainName(ch), y: y, glyphs: gl)
            cols.put(&g, 1, hex(m.program.blockStart[Int(m.chains.firstBlock[ch])]), y: y, style: .dim, glyphs: gl)
            cols.put(&g, 2, Describe.count(Int(m.chains.bytes[ch])), y: y, glyphs: gl)
            cols.put(&g, 3, Describe.count(Int(m.chains.blockCount[ch])), y: y, glyphs: gl)
            let heat = m.chainHeat(ch)
            cols.put(&g, 4, heat == 0 ? "-" : Describe.count(heat), y: y, style: heat == 0 ? .dim : .plain, glyphs: gl)
            let loads = a.chainLoads[ch]
            cols.put(&g, 5, loads == 0 ? "-" : Describe.count(loads), y: y, style: loads == 0 ? .dim : .plain, glyphs: gl)
            cols.put(&g, 6, pt, y: y, style: ps, glyphs: gl)
            if i == cur.row { g.select(y: y) }
        }
        g.scrollMark(top: cur.top, rows: rows, count: list.count, firstRow: top, glyphs: gl)
        let foot = "runs: times the chain's hottest block ran · loads: cluster loads its entry caused"
        g.put(gl.fit(foot, g.width - 2), x: 1, y: l.bodyTop + l.bodyHeight - 1, style: .dim)
    }

    // MARK: Blocks

    static func blocks(_ g: inout Grid, _ s: ExplorerState, _ a: Analysis, _ ch: Int, _ cur: ListCursor, _ gl: Glyphs) {
        let m = s.model
        let p = m.program
        let l = Layout(width: s.width, height: s.height)
        let (pt, _) = place(ch, a)
        let list = m.chains.blocks(of: ch)
        g.title("chain \(m.chainName(ch))", detail: "\(list.count) block\(list.count == 1 ? "" : "s")  \(Describe.count(Int(m.chains.bytes[ch]))) B  \(pt)", y: l.bodyTop, glyphs: gl)
        let wide = g.width >= 110
        let cols = Columns([
            .fixed("block", 7),
            .fixed("address", wide ? 18 : 9, right: false),
            .fixed("bytes", 5),
            .fixed("ins", 4),
            .fixed("runs", wide ? 11 : 8),
            .fixed("ends in", 12, right: false),
            .flex("goes to", min: 10),
        ], total: g.width - 2)
        cols.header(&g, y: l.bodyTop + 1, glyphs: gl)
        let (top, rows) = Lists.area(s, .drill(s.view))
        for r in 0..<rows {
            let i = cur.top + r
            guard i < list.count else { break }
            let b = list.lowerBound + i
            let y = top + r
            cols.put(&g, 0, "#\(b)", y: y, style: .dim, glyphs: gl)
            cols.put(&g, 1, hex(p.blockStart[b]), y: y, glyphs: gl)
            cols.put(&g, 2, Describe.count(Int(p.blockSize[b])), y: y, glyphs: gl)
            cols.put(&g, 3, Describe.count(Int(p.blockInstructionCount[b])), y: y, glyphs: gl)
            let heat = m.blockHeat[b]
            cols.put(&g, 4, heat == 0 ? "-" : Describe.count(heat), y: y, style: heat == 0 ? .dim : .plain, glyphs: gl)
            cols.put(&g, 5, p.blockKind[b].label, y: y, glyphs: gl)
            let (t, st) = target(b, ch, s, a, gl)
            cols.put(&g, 6, t, y: y, style: st, glyphs: gl)
            if i == cur.row { g.select(y: y) }
        }
        g.scrollMark(top: cur.top, rows: rows, count: list.count, firstRow: top, glyphs: gl)
        g.put(gl.fit("Enter: disassembly · goes to: the target and where it lives (a transfer out of the cluster needs a stub)", g.width - 2),
              x: 1, y: l.bodyTop + l.bodyHeight - 1, style: .dim)
    }

    /// Where a block's transfer goes, and whether it leaves the chain's cluster.
    static func target(_ b: Int, _ ch: Int, _ s: ExplorerState, _ a: Analysis, _ gl: Glyphs) -> (String, Style) {
        let m = s.model
        let p = m.program
        let kind = p.blockKind[b]
        if kind.isIndirect { return ("indirect (through the overlay manager)", Style(color: .yellow)) }
        if kind == .ret { return ("return", .dim) }
        if kind == .stop { return ("", .dim) }
        if kind == .fallThrough { return ("next block", .dim) }
        guard kind.isDirect else { return ("", .dim) }
        let t = p.blockTarget[b]
        guard t >= 0 else { return ("\(gl.arrowRight) \(hex(p.blockTargetAddress[b])) (outside the code)", .dim) }
        let tch = Int(m.chains.blockChain[Int(t)])
        let tf = p.functions[Int(p.blockFunction[Int(t)])]
        let off = p.blockStart[Int(t)] - tf.address
        let label = off == 0 ? tf.name : "\(tf.name)+0x\(String(off, radix: 16))"
        let here = a.clustering.chainCluster[ch], there = a.clustering.chainCluster[tch]
        if tch == ch { return ("\(gl.arrowRight) \(label) (same chain)", .dim) }
        if here >= 0 && here == there { return ("\(gl.arrowRight) \(label) (same cluster)", .plain) }
        let (pt, ps) = place(tch, a)
        return ("\(gl.arrowRight) \(label) [\(pt)]", here < 0 && there < 0 ? .plain : ps)
    }

    // MARK: Disassembly

    static func disassembly(_ g: inout Grid, _ s: ExplorerState, _ a: Analysis, _ b: Int, _ cur: ListCursor, _ gl: Glyphs) {
        let m = s.model
        let p = m.program
        let l = Layout(width: s.width, height: s.height)
        let ch = Int(m.chains.blockChain[b])
        let f = p.functions[Int(p.blockFunction[b])]
        let (pt, _) = place(ch, a)
        let off = p.blockStart[b] - f.address
        g.title("block #\(b) at \(hex(p.blockStart[b]))", detail: "\(f.name)\(off == 0 ? "" : "+0x" + String(off, radix: 16))  \(p.blockSize[b]) B  ran \(Describe.count(m.blockHeat[b])) times  \(pt)", y: l.bodyTop, glyphs: gl)
        let wide = g.width >= 110
        let cols = Columns([
            .fixed("address", wide ? 18 : 9, right: false),
            .fixed("bytes", wide ? 24 : 15, right: false),
            .flex("instruction", min: 20),
        ], total: g.width - 2)
        cols.header(&g, y: l.bodyTop + 1, glyphs: gl)
        let ins = Lists.instructions(ofBlock: b, m)
        let (top, rows) = Lists.area(s, .drill(s.view))
        for r in 0..<rows {
            let i = cur.top + r
            guard i < ins.count else { break }
            let y = top + r
            let x = ins[i]
            cols.put(&g, 0, hex(x.address), y: y, style: .dim, glyphs: gl)
            let byteText = x.bytes.map { String(format: "%02x", $0) }.joined(separator: " ")
            cols.put(&g, 1, byteText, y: y, style: .dim, glyphs: gl)
            var text = x.text
            var st = Style.plain
            if let t = x.target, let tb = p.block(containing: t) {
                let tch = Int(m.chains.blockChain[tb])
                let (pt, ps) = place(tch, a)
                let here = a.clustering.chainCluster[ch], there = a.clustering.chainCluster[tch]
                let tf = p.functions[Int(p.blockFunction[tb])]
                let toff = t - tf.address
                let where_ = tch == ch || (here >= 0 && here == there) ? "" : " [\(pt)]"
                text += "   <\(tf.name)\(toff == 0 ? "" : "+0x" + String(toff, radix: 16))>\(where_)"
                if !where_.isEmpty { st = ps }
            }
            cols.put(&g, 2, text, y: y, style: st, glyphs: gl)
            if i == cur.row { g.select(y: y) }
        }
        g.scrollMark(top: cur.top, rows: rows, count: ins.count, firstRow: top, glyphs: gl)
        g.put(gl.fit("AT&T syntax · Enter on a branch follows it · [cN]: the target is in another cluster (the branch becomes a stub)", g.width - 2),
              x: 1, y: l.bodyTop + l.bodyHeight - 1, style: .dim)
    }
}
