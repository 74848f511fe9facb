/// Which code units a call may enter before it returns: the question that decides whether
/// a call in buffer code needs the overlay manager.
///
/// A call from cluster K normally goes through a call thunk, because the callee could
/// load another cluster over K before it returns to the buffer (the return-address trap).
/// When every block the callee can reach — its own blocks, everything they jump to, and
/// everything they call, transitively — is resident or in K, and none of it transfers
/// through a pointer the rewriter cannot follow, K stays in the buffer for the whole call:
/// the call can go straight to the callee and return straight to K. The replay's load
/// count is unchanged (entering K from K never loads), only the manager's work goes.
///
/// Computed on the block graph (fall-through and return-site edges, direct jumps and
/// calls, resolved jump tables), condensed into strongly connected components
/// (Tarjan, iterative); each component's value is the join of its blocks' units and its
/// successors' values.
struct CallReach {
    /// Per block: `resident` (reaches only resident code), a unit number ≥ 1 (reaches
    /// only resident code and that cluster), or `many`.
    private(set) var value: [Int32]
    static let resident: Int32 = 0
    static let many: Int32 = -1

    /// Functions that return twice. The second return comes through a saved return
    /// address (a `jmp_buf`, a forked child's stack), so a call to one must not sit in a
    /// buffer: the core set keeps their callers resident (`CoreSet.callersOfReturnsTwice`),
    /// and such calls are never treated as staying in their cluster.
    static let returnsTwice: Set<String> = [
        "setjmp", "_setjmp", "__setjmp", "sigsetjmp", "__sigsetjmp", "savectx",
        "vfork", "__vfork", "getcontext", "__getcontext",
    ]

    /// `unit(b)`: 0 for resident blocks, k + 1 for cluster k.
    init(program p: Program, unit: (Int) -> Int) {
        let n = p.blockCount
        // Successors and each block's own value.
        var own = [Int32](repeating: 0, count: n)
        var twice = [Bool](repeating: false, count: p.functions.count)
        for (i, f) in p.functions.enumerated() where CallReach.returnsTwice.contains(f.name) || f.aliases.contains(where: CallReach.returnsTwice.contains) {
            twice[i] = true
        }
        var succStart = [Int32](repeating: 0, count: n + 1)
        var succ: [Int32] = []
        succ.reserveCapacity(n * 2)
        for b in 0..<n {
            own[b] = twice[Int(p.blockFunction[b])] ? CallReach.many : Int32(unit(b))
            let end = p.blockStart[b] + UInt64(p.blockSize[b])
            if p.blockContinues[b] {
                if b + 1 < n && p.blockStart[b + 1] == end { succ.append(Int32(b + 1)) }
                else if let nb = p.block(startingAt: end) { succ.append(Int32(nb)) }
                else { own[b] = CallReach.many }
            }
            switch p.blockKind[b] {
            case .jump, .conditionalJump, .call:
                if p.blockTarget[b] >= 0 { succ.append(p.blockTarget[b]) } else { own[b] = CallReach.many }
            case .indirectJump:
                if let ts = p.jumpTableTargets[Int32(b)] { succ.append(contentsOf: ts) } else { own[b] = CallReach.many }
            case .indirectCall, .far:
                own[b] = CallReach.many
            case .fallThrough, .ret, .stop:
                break
            }
            succStart[b + 1] = Int32(succ.count)
        }

        func join(_ a: Int32, _ b: Int32) -> Int32 {
            if a == CallReach.many || b == CallReach.many { return CallReach.many }
            if a == CallReach.resident { return b }
            if b == CallReach.resident || a == b { return a }
            return CallReach.many
        }

        // Tarjan's algorithm without recursion. Components come out successors first, so
        // each one's value can be finished when it is popped.
        var index = [Int32](repeating: -1, count: n)
        var low = [Int32](repeating: 0, count: n)
        var onStack = [Bool](repeating: false, count: n)
        var stack: [Int32] = []
        var value = [Int32](repeating: 0, count: n)
        var next: Int32 = 0
        var frames: [(node: Int32, edge: Int32)] = []
        for root in 0..<n where index[root] < 0 {
            frames.append((Int32(root), succStart[root]))
            index[root] = next; low[root] = next; next += 1
            stack.append(Int32(root)); onStack[root] = true
            while let top = frames.last {
                let v = Int(top.node)
                if top.edge < succStart[v + 1] {
                    frames[frames.count - 1].edge += 1
                    let w = Int(succ[Int(top.edge)])
                    if index[w] < 0 {
                        index[w] = next; low[w] = next; next += 1
                        stack.append(Int32(w)); onStack[w] = true
                        frames.append((Int32(w), succStart[w]))
                    } else if onStack[w] {
                        low[v] = min(low[v], index[w])
                    }
                    continue
                }
                frames.removeLast()
                if let parent = frames.last { low[Int(parent.node)] = min(low[Int(parent.node)], low[v]) }
                guard low[v] == index[v] else { continue }
                // v roots a component: pop it, join its blocks' own values and the values
                // of the components its edges leave for (all finished already).
                var members: [Int32] = []
                while true {
                    let w = stack.removeLast()
                    onStack[Int(w)] = false
                    members.append(w)
                    if Int(w) == v { break }
                }
                var acc = CallReach.resident
                for w in members {
                    acc = join(acc, own[Int(w)])
                    for e in succStart[Int(w)]..<succStart[Int(w) + 1] {
                        // A member of this component has no value yet (0, resident: neutral).
                        acc = join(acc, value[Int(succ[Int(e)])])
                    }
                }
                for w in members { value[Int(w)] = acc }
            }
        }
        self.value = value
    }

    /// Whether a call from `unit` (≥ 1) to the block `target` keeps `unit` in the buffer
    /// until it returns.
    func staysIn(_ unit: Int, callingBlock target: Int) -> Bool {
        let v = value[target]
        return v == CallReach.resident || v == Int32(unit)
    }
}
