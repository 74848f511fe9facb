import OvlCore

/// The list the keys move in, whichever view is showing.
enum ActiveList: Equatable {
    case partition
    case clusters
    /// The top drill level of the partition or cluster view.
    case drill(ViewID)
    case graph
    case steps
    case config
    case none
}

/// Row sources and geometry shared by the views and the reducer, so what is drawn and
/// what the keys and the mouse act on always agree.
enum Lists {
    static func active(_ s: ExplorerState) -> ActiveList {
        switch s.view {
        case .partition: return s.partition.drill.isEmpty ? .partition : .drill(.partition)
        case .clusters: return s.clusters.drill.isEmpty ? .clusters : .drill(.clusters)
        case .graph: return .graph
        case .steps: return .steps
        case .sweep: return .none
        case .config: return .config
        }
    }

    static func drillStack(_ s: ExplorerState, _ v: ViewID) -> [DrillLevel] {
        v == .partition ? s.partition.drill : s.clusters.drill
    }

    static func setDrillStack(_ s: inout ExplorerState, _ v: ViewID, _ d: [DrillLevel]) {
        if v == .partition { s.partition.drill = d } else { s.clusters.drill = d }
    }

    /// First screen row of the list and how many rows it shows.
    static func area(_ s: ExplorerState, _ list: ActiveList) -> (top: Int, rows: Int) {
        let l = Layout(width: s.width, height: s.height)
        let b = l.bodyTop, h = l.bodyHeight
        switch list {
        case .partition: return (b + 1, max(1, h - 3))
        case .clusters: return (b + 2, max(1, h - 4))
        case .drill: return (b + 2, max(1, h - 3))
        case .graph: return (b + 2, max(1, h - 2))
        case .steps: return (b + 2, max(1, h - 6))
        case .config: return (b + 1, max(1, h - 2))
        case .none: return (b, 0)
        }
    }

    static func count(_ s: ExplorerState, _ list: ActiveList) -> Int {
        switch list {
        case .partition: return s.partition.rows.count
        case .clusters: return s.clusters.rows.count
        case .drill(let v):
            guard let level = drillStack(s, v).last else { return 0 }
            return rows(of: level, s).count
        case .graph: return graphNeighbours(s).count
        case .steps: return s.steps.rows.count
        case .config: return configRows(s).count
        case .none: return 0
        }
    }

    static func cursor(_ s: ExplorerState, _ list: ActiveList) -> ListCursor {
        switch list {
        case .partition: return s.partition.cursor
        case .clusters: return s.clusters.cursor
        case .drill(let v): return drillStack(s, v).last?.cursor ?? ListCursor()
        case .graph: return s.graph.cursor
        case .steps: return s.steps.cursor
        case .config: return s.configCursor
        case .none: return ListCursor()
        }
    }

    static func setCursor(_ s: inout ExplorerState, _ list: ActiveList, _ c: ListCursor) {
        switch list {
        case .partition: s.partition.cursor = c
        case .clusters: s.clusters.cursor = c
        case .drill(let v):
            var d = drillStack(s, v)
            guard !d.isEmpty else { return }
            d[d.count - 1].cursor = c
            setDrillStack(&s, v, d)
        case .graph: s.graph.cursor = c
        case .steps: s.steps.cursor = c
        case .config: s.configCursor = c
        case .none: break
        }
    }

    // MARK: Drill levels

    /// Rows of a drill level: chain ids, block ids, or instruction indices.
    static func rows(of level: DrillLevel, _ s: ExplorerState) -> [Int32] {
        switch level {
        case .chains(let src, _): return chains(of: src, s)
        case .blocks(let ch, _): return s.model.chains.blocks(of: Int(ch)).map { Int32($0) }
        case .disassembly(let b, _): return (0..<instructions(ofBlock: Int(b), s.model).count).map { Int32($0) }
        }
    }

    static func chains(of src: ChainSource, _ s: ExplorerState) -> [Int32] {
        let m = s.model
        switch src {
        case .function(let f): return m.functionChains[Int(f)].map { Int32($0) }
        case .cluster(let low):
            guard let a = s.analysis else { return [] }
            let k = a.clustering.chainCluster[Int(low)]
            if k < 0 { return residentChains(a) }
            return a.clustering.clusterChains[Int(k)]
        case .resident:
            guard let a = s.analysis else { return [] }
            return residentChains(a)
        }
    }

    static func residentChains(_ a: Analysis) -> [Int32] {
        var out: [Int32] = []
        for (i, k) in a.clustering.chainCluster.enumerated() where k < 0 { out.append(Int32(i)) }
        return out
    }

    /// A block's instructions with their AT&T text.
    static func instructions(ofBlock b: Int, _ m: ExplorerModel) -> [(address: UInt64, bytes: ArraySlice<UInt8>, text: String, target: UInt64?)] {
        let p = m.program
        let bytes = p.bytes(ofBlock: b)
        var out: [(address: UInt64, bytes: ArraySlice<UInt8>, text: String, target: UInt64?)] = []
        var off = bytes.startIndex
        var addr = p.blockStart[b]
        let decoded = p.instructions(ofBlock: b)
        var i = 0
        while off < bytes.endIndex {
            guard let (text, len) = X86Decoder.format(bytes[off...], at: addr), len > 0 else {
                out.append((addr, bytes[off..<bytes.endIndex], "(bytes not decoded)", nil))
                break
            }
            var target: UInt64? = nil
            if i < decoded.count, decoded[i].address == addr, decoded[i].flow.isDirect { target = decoded[i].target }
            out.append((addr, bytes[off..<min(bytes.endIndex, off + len)], shortHex(text), target))
            off += len
            addr += UInt64(len)
            i += 1
        }
        return out
    }

    /// Zydis writes absolute targets as 16 upper-case digits: `0x00000000004011CB`
    /// reads better as `0x4011cb`.
    static func shortHex(_ text: String) -> String {
        guard text.contains("0x0000") else { return text }
        var out = ""
        var rest = Substring(text)
        while let r = rest.range(of: "0x") {
            out += rest[..<r.lowerBound]
            let digits = rest[r.upperBound...].prefix { $0.isHexDigit }
            if digits.count == 16 {
                let trimmed = digits.drop { $0 == "0" }
                out += "0x" + (trimmed.isEmpty ? "0" : trimmed.lowercased())
            } else {
                out += "0x" + digits
            }
            rest = rest[r.upperBound...].dropFirst(digits.count)
        }
        return out + rest
    }

    // MARK: Graph

    /// The graph view's centre as a node of the current analysis.
    static func graphCenter(_ s: ExplorerState) -> Int32? {
        guard let a = s.analysis else { return nil }
        return node(s.graph.center ?? .resident, a)
    }

    static func node(_ r: NodeRef, _ a: Analysis) -> Int32 {
        switch r {
        case .resident: return a.residentNode
        case .cluster(let low): return a.node(ofChain: Int(low))
        }
    }

    static func ref(_ node: Int32, _ a: Analysis) -> NodeRef {
        node == a.residentNode ? .resident : .cluster(lowestChain: a.clustering.clusterChains[Int(node)].first ?? 0)
    }

    static func graphNeighbours(_ s: ExplorerState) -> [(node: Int32, weight: UInt64)] {
        guard let a = s.analysis, let c = graphCenter(s) else { return [] }
        return a.adjacency.neighbours[Int(c)]
    }

    // MARK: Configuration view

    static func configRows(_ s: ExplorerState) -> [ConfigRow] {
        var rows: [ConfigRow] = [.gamma, .bufferSize, .buffers, .pageSize, .pageRead, .preset, .defragment, .storage, .granularity, .coreHeading]
        rows += s.config.coreFunctions.indices.map { .core($0) }
        rows.append(.excludeHeading)
        rows += s.config.coreExclude.indices.map { .exclude($0) }
        if let a = s.analysis {
            rows.append(.resolvedHeading)
            rows += a.core.functions.map { .resolved($0) }
        }
        return rows
    }

    // MARK: Search

    /// The text `/` searches in each row of the active list.
    static func searchText(_ s: ExplorerState, _ list: ActiveList, row i: Int) -> String {
        let m = s.model
        switch list {
        case .partition: return m.lowerNames[Int(s.partition.rows[i])]
        case .clusters:
            guard let a = s.analysis else { return "" }
            let k = Int(s.clusters.rows[i])
            var t = "c\(k)"
            var last = -1
            for ch in a.clustering.clusterChains[k] {
                let f = m.chainFunction(Int(ch))
                if f != last { t += " " + m.lowerNames[f]; last = f }
            }
            return t
        case .drill(let v):
            guard let level = drillStack(s, v).last else { return "" }
            let r = rows(of: level, s)
            switch level {
            case .chains: return m.chainName(Int(r[i])).lowercased()
            case .blocks:
                let b = Int(r[i])
                return "0x" + String(m.program.blockStart[b], radix: 16) + " " + m.program.blockKind[b].label
            case .disassembly(let b, _):
                let ins = instructions(ofBlock: Int(b), m)
                return "0x" + String(ins[i].address, radix: 16) + " " + ins[i].text.lowercased()
            }
        case .graph:
            guard let a = s.analysis else { return "" }
            let n = graphNeighbours(s)[i].node
            if n == a.residentNode { return "resident core hot" }
            return "c\(n) " + (a.clustering.clusterChains[Int(n)].first.map { m.chainName(Int($0)).lowercased() } ?? "")
        case .steps:
            guard let a = s.analysis else { return "" }
            let e = a.events[Int(s.steps.rows[i])]
            func name(_ c: Int32) -> String { c < 0 ? "core" : m.chainName(Int(c)).lowercased() }
            return name(e.a) + " " + name(e.b)
        case .config:
            switch configRows(s)[i] {
            case .core(let j): return s.config.coreFunctions[j].lowercased()
            case .exclude(let j): return s.config.coreExclude[j].lowercased()
            case .resolved(let f): return m.lowerNames[Int(f)]
            default: return ""
            }
        case .none: return ""
        }
    }
}
