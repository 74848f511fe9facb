import Foundation
import OvlTestSupport
import Testing
@testable import OvlCore

/// StubModel's numbers against the assembler: each sequence its documentation names,
/// assembled by GNU as, is as long as the constant the model charges. (Whether the
/// rewriter writes these sequences is checked against rewritten images elsewhere; this
/// checks that the constants are the sizes of the sequences they describe.)
@Suite struct StubModelTests {
    static let source = """
        .text
        .type jump_stub,@function
    jump_stub:                      # jmp L to a cluster
        push $0x401000
        jmp _dynamic_jmp
        .size jump_stub, .-jump_stub

        .type conditional_stub,@function
    conditional_stub:               # jcc L: jcc.rel32 in place, the jump stub out of line
        {disp32} jne 1f
    1:  push $0x401000
        jmp _dynamic_jmp
        .size conditional_stub, .-conditional_stub

        .type call_stub,@function
    call_stub:                      # call f
        push $0x401000
        call _dynamic_call
        .size call_stub, .-call_stub

        .type indirect_original,@function
    indirect_original:              # jmp *table(,%rdi,8)
        jmp *0x4060e0(,%rdi,8)
        .size indirect_original, .-indirect_original

        .type indirect_stub,@function
    indirect_stub:                  # push the same operand, then a rel32 transfer
        push 0x4060e0(,%rdi,8)
        jmp _dynamic_jmp
        .size indirect_stub, .-indirect_stub
    """

    @Test(Tools.needed("as", "readelf"))
    func constantsAreTheSizesOfTheirSequences() throws {
        let dir = Fixture.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try StubModelTests.source.write(toFile: dir + "/stubs.s", atomically: true, encoding: .utf8)
        let asm = try Fixture.run(try Tools.path("as"), ["--64", "-o", dir + "/stubs.o", dir + "/stubs.s"])
        try #require(asm.status == 0, "as: \(asm.err)")
        let syms = try Fixture.run(try Tools.path("readelf"), ["-sW", dir + "/stubs.o"])
        var size: [String: Int] = [:]
        for line in syms.out.split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count >= 8, f[3] == "FUNC", let n = Int(f[2]) { size[String(f[7])] = n }
        }
        #expect(size["jump_stub"] == StubModel.jumpStubBytes)
        #expect(size["conditional_stub"] == StubModel.conditionalStubBytes)
        #expect(size["call_stub"] == StubModel.callStubBytes)
        let original = try #require(size["indirect_original"]), stub = try #require(size["indirect_stub"])
        #expect(stub - original == StubModel.indirectOverhead)
        // What the model charges a transfer: the stub less the instruction it replaces.
        #expect(StubModel.overhead(.conditionalJump, length: 2) == StubModel.conditionalStubBytes - 2)
        #expect(StubModel.overhead(.jump, length: 5) == StubModel.jumpStubBytes - 5)
        #expect(StubModel.overhead(.call, length: 5) == StubModel.callStubBytes - 5)
    }
}
