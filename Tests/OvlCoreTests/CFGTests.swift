import Foundation
import OvlTestSupport
import Testing
@testable import OvlCore

/// The CFG on small hand-written functions whose blocks and edges are known.
@Suite struct CFGTests {
    static let asm = """
        .text
        .globl _start
        .type _start,@function
    _start:
        call f
        call g
        mov $60, %eax
        xor %edi, %edi
        syscall
        hlt
        .size _start, .-_start

        .type f,@function
    f:                      # blocks: [cmp; jne] [add] [L1: ret]
        cmp $1, %edi
        jne 1f
        add $2, %eax
    1:  ret
        .size f, .-f

        .type g,@function
    g:                      # a jump table with three targets, reached by jmp *table(,%rdi,8)
        and $3, %edi
        jmp *table(,%rdi,8)
    2:  mov $1, %eax
        ret
    3:  mov $2, %eax
        ret
    4:  mov $3, %eax
        jmp 2b
        .size g, .-g

        .type h,@function
    h:                      # ends in a call to a function that does not return
        push %rbx
        call abort_like
        .size h, .-h

        .type abort_like,@function
    abort_like:
        ud2
        .size abort_like, .-abort_like

        .section .rodata
        .align 8
    table:
        .quad 2b, 3b, 4b, 2b
    """

    static func program() throws -> Program {
        let exe = try Fixture.build(asm, ext: "s", cc: try Tools.path("gcc"), flags: ["-nostdlib"])
        return try Program.load(path: exe)
    }

    @Test(Tools.needed("gcc"))
    func blocksAndTransfers() throws {
        let p = try CFGTests.program()
        let f = try #require(p.functionIndex(named: "f"))
        let fb = p.functions[f].blocks
        #expect(fb.count == 3)
        #expect(p.blockKind[fb.lowerBound] == .conditionalJump)
        #expect(p.blockKind[fb.lowerBound + 1] == .fallThrough)   // ends because L1 is a target
        #expect(p.blockKind[fb.lowerBound + 2] == .ret)
        #expect(p.blockTarget[fb.lowerBound] == Int32(fb.lowerBound + 2))
        #expect(p.blockContinues[fb.lowerBound] && p.blockContinues[fb.lowerBound + 1])
        #expect(!p.blockContinues[fb.lowerBound + 2])

        let s = try #require(p.functionIndex(named: "_start"))
        let sb = p.functions[s].blocks
        #expect(p.blockKind[sb.lowerBound] == .call)
        #expect(p.blockTarget[sb.lowerBound] == Int32(fb.lowerBound))
        #expect(p.blockContinues[sb.lowerBound])  // the return site follows the call
    }

    @Test(Tools.needed("gcc"))
    func jumpTableResolvedThroughRelocations() throws {
        let p = try CFGTests.program()
        let g = try #require(p.functionIndex(named: "g"))
        let gb = p.functions[g].blocks
        let ij = gb.lowerBound
        #expect(p.blockKind[ij] == .indirectJump)
        let targets = try #require(p.jumpTableTargets[Int32(ij)])
        #expect(targets.count == 3)  // 2b, 3b, 4b (2b twice in the table)
        #expect(Set(targets) == Set([Int32(gb.lowerBound + 1), Int32(gb.lowerBound + 2), Int32(gb.lowerBound + 3)]))
        #expect(p.unresolvedIndirectJumps == 0)
    }

    @Test(Tools.needed("gcc"))
    func callAtFunctionEndDoesNotFallIntoTheNextFunction() throws {
        let p = try CFGTests.program()
        let h = try #require(p.functionIndex(named: "h"))
        let last = p.functions[h].blocks.upperBound - 1
        #expect(p.blockKind[last] == .call)
        #expect(!p.blockContinues[last])
        let chains = Chains(program: p, granularity: .block)
        let a = try #require(p.functionIndex(named: "abort_like"))
        #expect(chains.blockChain[last] != chains.blockChain[p.functions[a].blocks.lowerBound])
    }

    @Test(Tools.needed("gcc"))
    func chainsFollowFallThroughAndReturnSites() throws {
        let p = try CFGTests.program()
        let chains = Chains(program: p, granularity: .block)
        let f = p.functions[try #require(p.functionIndex(named: "f"))].blocks
        // f is one chain: jne falls through, add falls into L1.
        #expect(Set(f.map { chains.blockChain[$0] }).count == 1)
        let g = p.functions[try #require(p.functionIndex(named: "g"))].blocks
        // g: [and; jmp*] alone; [mov; ret] [mov; ret] [mov; jmp] each a chain.
        #expect(Set(g.map { chains.blockChain[$0] }).count == 4)
        let byFunction = Chains(program: p, granularity: .function)
        #expect(Set(g.map { byFunction.blockChain[$0] }).count == 1)
        #expect(byFunction.count < chains.count)
        // Chains partition the blocks into contiguous ranges.
        var covered = 0
        for c in 0..<chains.count {
            #expect(chains.firstBlock[c] == Int32(covered))
            covered += Int(chains.blockCount[c])
        }
        #expect(covered == p.blockCount)
    }

    @Test func samplesJumpTablesAreResolved() throws {
        for name in ["interp", "jumptab", "interp-glibc"] {
            let p = try Program.load(path: Fixture.samples + "/" + name)
            #expect(p.jumpTableTargets.values.contains { $0.count >= 10 }, "\(name) has a switch of 10+ cases")
        }
    }
}

@Suite struct SignalHandlerTests {
    /// sighandler fills a `struct sigaction` with `on_usr1` several calls before calling
    /// sigaction; the handler, everything it calls directly and nothing of the
    /// computation it interrupts must be required resident.
    @Test func handlersAndWhatTheyCallAreRequiredResident() throws {
        let p = try Program.load(path: Fixture.samples + "/sighandler")
        let core = CoreSet.resolve(Config(), program: p)
        func required(_ name: String) -> Bool {
            guard let f = p.functionIndex(named: name) else { return false }
            return core.reasons[Int32(f)]?.origin == .required
        }
        #expect(required("on_usr1"))
        #expect(required("note_signal"))
        #expect(required("scramble"))
        #expect(p.functions.contains { $0.name.hasPrefix("format_decimal") && core.reasons[Int32(p.functionIndex(named: $0.name)!)]?.origin == .required })
        #expect(required("write"))
        #expect(!required("step_c"), "the interrupted computation is not the handler's")
        #expect(!required("round_of"))
        #expect(!required("main"), "main installs the handler; it is not one")
        // Programs that install no handler get none.
        let crc = try Program.load(path: Fixture.samples + "/crc")
        let crcCore = CoreSet.resolve(Config(), program: crc)
        #expect(!crcCore.reasons.values.contains { $0.why.contains("signal handler") })
    }
}

@Suite struct CallReachTests {
    /// With every block in one cluster, a leaf reaches only that cluster; a function that
    /// returns twice never qualifies for a direct call, nor does what calls through a
    /// pointer. With every block resident, a leaf reaches only resident code.
    @Test func leavesStayAndReturnsTwiceNeverDoes() throws {
        let p = try Program.load(path: Fixture.samples + "/longjmp")
        let inOne = CallReach(program: p) { _ in 1 }
        let resident = CallReach(program: p) { _ in 0 }
        func entry(_ name: String) throws -> Int { Int(p.functions[try #require(p.functionIndex(named: name))].firstBlock) }
        #expect(inOne.staysIn(1, callingBlock: try entry("memset")))
        #expect(!inOne.staysIn(2, callingBlock: try entry("memset")), "memset's blocks are in cluster 1, not 2")
        #expect(resident.staysIn(3, callingBlock: try entry("memset")))
        #expect(!inOne.staysIn(1, callingBlock: try entry("setjmp")))
        #expect(!resident.staysIn(1, callingBlock: try entry("setjmp")))
        // qsort calls its comparator through a pointer.
        let q = try Program.load(path: Fixture.samples + "/qsortcb")
        let qOne = CallReach(program: q) { _ in 1 }
        #expect(!qOne.staysIn(1, callingBlock: Int(q.functions[try #require(q.functionIndex(named: "qsort"))].firstBlock)))
    }
}
