import Foundation
import OvlTestSupport
import Testing
@testable import OvlCore

@Suite struct DecoderTests {
    /// objdump's instruction start addresses in the executable sections of `path`.
    static func objdumpStarts(_ path: String) throws -> Set<UInt64> {
        let r = try Fixture.run(try Tools.path("objdump"), ["-d", "--no-show-raw-insn", "-w", path])
        var starts = Set<UInt64>()
        for line in r.out.split(separator: "\n") {
            // "  401000:\tendbr64" — an address, a colon, a tab, then the mnemonic.
            guard line.hasPrefix(" "), let colon = line.firstIndex(of: ":") else { continue }
            let addr = line[..<colon].trimmingCharacters(in: .whitespaces)
            let rest = line[line.index(after: colon)...]
            guard let a = UInt64(addr, radix: 16), !rest.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
            if rest.contains("(bad)") { continue }
            starts.insert(a)
        }
        return starts
    }

    /// Every instruction ovl decodes starts where objdump's does, and inside every function
    /// ovl decodes every instruction objdump shows.
    @Test(Tools.needed("objdump"), arguments: Fixture.sampleBinaries)
    func instructionBoundariesAgreeWithObjdump(_ path: String) throws {
        let p = try Program.load(path: path)
        let theirs = try DecoderTests.objdumpStarts(path)
        let ours = Set(p.instructionStarts)
        #expect(ours.count > 1000)
        let extra = ours.subtracting(theirs)
        #expect(extra.isEmpty, "\(path): \(extra.count) starts objdump does not have, e.g. \(extra.sorted().prefix(5).map { String($0, radix: 16) })")
        var missing: [UInt64] = []
        for f in p.functions where !f.isGap {
            for a in theirs where a >= f.address && a < f.end && !ours.contains(a) { missing.append(a) }
        }
        #expect(missing.isEmpty, "\(path): objdump starts ovl missed: \(missing.sorted().prefix(5).map { String($0, radix: 16) })")
        // Code bytes exclude padding and stay within the sections.
        #expect(p.codeBytes + p.paddingBytes <= p.textSectionBytes)
        #expect(p.codeBytes > p.textSectionBytes * 8 / 10)
    }

    /// Decoding on two cores, split after a function, gives what one pass gives: every
    /// instruction and what was said of it, every function (names of the gaps included,
    /// which a split between a function and the gap after it must keep), every block, the
    /// padding and the string instructions, wherever the split falls.
    static func expectSplitDecodingSame(_ elf: ELFFile, options: ProgramOptions, _ what: String) throws {
        func build(_ split: CFGBuilder.DecodeSplit) throws -> Program {
            var b = CFGBuilder(elf: elf, options: options)
            b.decodeSplit = split
            return try b.build()
        }
        let one = try build(CFGBuilder.DecodeSplit(minimumBytes: .max))
        // Splits near the start, middle and end, and right after functions followed by code
        // that no symbol names (a gap region, named after the function before it).
        var splits = [0.03, 0.5, 0.97].map { CFGBuilder.DecodeSplit(minimumBytes: 0, fraction: $0) }
        let beforeGaps = one.functions.indices.dropFirst().filter { one.functions[$0].isGap && !one.functions[$0 - 1].isGap }
        for i in beforeGaps.prefix(3) + beforeGaps.suffix(2) {
            splits.append(CFGBuilder.DecodeSplit(minimumBytes: 0, afterFunction: one.functions[i - 1].address))
        }
        for split in splits {
            let two = try build(split)
            let label = "\(what), split at \(split.afterFunction.map { "the function at 0x" + String($0, radix: 16) } ?? "\(split.fraction)")"
            #expect(two.instructionStarts == one.instructionStarts && two.instructionLength == one.instructionLength
                    && two.instructionFlow == one.instructionFlow && two.instructionTarget == one.instructionTarget
                    && two.instructionShape == one.instructionShape && two.instructionDisplacement == one.instructionDisplacement,
                    "\(label): instructions")
            #expect(two.functions.map { "\($0.name) \($0.aliases) \($0.address) \($0.size) \($0.section) \($0.firstBlock) \($0.blockCount) \($0.isGap) \($0.requiredResidentReason ?? "")" }
                    == one.functions.map { "\($0.name) \($0.aliases) \($0.address) \($0.size) \($0.section) \($0.firstBlock) \($0.blockCount) \($0.isGap) \($0.requiredResidentReason ?? "")" },
                    "\(label): functions")
            #expect(two.blockStart == one.blockStart && two.blockSize == one.blockSize && two.blockKind == one.blockKind
                    && two.blockTarget == one.blockTarget && two.blockContinues == one.blockContinues
                    && two.blockFirstInstruction == one.blockFirstInstruction, "\(label): blocks")
            #expect(two.jumpTableTargets == one.jumpTableTargets && two.addressTakenFunctions == one.addressTakenFunctions, "\(label): jump tables and code pointers")
            #expect(two.paddingBytes == one.paddingBytes && two.codeBytes == one.codeBytes && two.repStringAddresses == one.repStringAddresses,
                    "\(label): padding, code bytes, string instructions")
        }
        #expect(one.instructionStarts.count > 1000)
    }

    @Test(arguments: Fixture.sampleBinaries)
    func decodingOnTwoCoresGivesWhatOnePassGives(_ path: String) throws {
        try DecoderTests.expectSplitDecodingSame(try Program.readImage(path: path), options: ProgramOptions(), path)
    }

    @Test(Tools.needed("xz"))
    func decodingOnTwoCoresGivesWhatOnePassGivesForTheLinuxExtract() throws {
        let config = try Config.load(path: LinuxExtractFiles.config)
        try DecoderTests.expectSplitDecodingSame(try ELFFile(path: try LinuxExtractFiles.image()), options: ProgramOptions(excludedSections: config.excludeSections),
                                                 "Linux extract")
    }

    /// The instructions the decoding pass kept (what the rewriter, the kernel rewriter and
    /// the explorer read instead of decoding again) are, field by field, what the decoder
    /// says of each block's bytes decoded afresh, in every sample and the Linux extract.
    @Test(arguments: Fixture.sampleBinaries)
    func keptInstructionsEqualAFreshDecoding(_ path: String) throws {
        DecoderTests.expectKeptInstructionsFresh(try Program.load(path: path), path)
    }

    @Test(Tools.needed("xz"))
    func keptInstructionsEqualAFreshDecodingOfTheLinuxExtract() throws {
        let config = try Config.load(path: LinuxExtractFiles.config)
        let p = try Program.load(path: try LinuxExtractFiles.image(), options: ProgramOptions(excludedSections: config.excludeSections))
        DecoderTests.expectKeptInstructionsFresh(p, "Linux extract")
    }

    static func expectKeptInstructionsFresh(_ p: Program, _ path: String) {
        var compared = 0, mismatches: [String] = []
        for b in 0..<p.blockCount {
            let kept = p.instructions(ofBlock: b)
            var fresh: [Instruction] = []
            p.bytes(ofBlock: b).withUnsafeBytes { raw in
                var off = 0
                while off < raw.count, let ins = X86Decoder.decode(UnsafeRawBufferPointer(rebasing: raw[off...]), at: p.blockStart[b] + UInt64(off)) {
                    fresh.append(ins)
                    off += ins.length
                }
            }
            if kept.count != fresh.count { mismatches.append("block \(b): \(kept.count) kept, \(fresh.count) decoded"); continue }
            for (k, f) in zip(kept, fresh) {
                compared += 1
                let same = k.address == f.address && k.length == f.length && k.flow == f.flow && k.isPadding == f.isPadding
                    && k.isRepString == f.isRepString && k.target == f.target && k.immOffset == f.immOffset && k.immSize == f.immSize
                    && k.dispOffset == f.dispOffset && k.dispSize == f.dispSize && k.disp == f.disp
                    && k.memIsRIPRelative == f.memIsRIPRelative && k.memHasIndex == f.memHasIndex && k.hasMemoryOperand == f.hasMemoryOperand
                if !same { mismatches.append("0x\(String(f.address, radix: 16))") }
            }
        }
        #expect(compared > 1000 && compared <= p.instructionStarts.count)
        #expect(mismatches.isEmpty, "\(path): \(mismatches.count) instructions differ, e.g. \(mismatches.prefix(5))")
    }

    @Test func decodesTransferKinds() throws {
        func decode(_ bytes: [UInt8], at a: UInt64 = 0x1000) -> Instruction? {
            bytes.withUnsafeBytes { X86Decoder.decode($0, at: a) }
        }
        #expect(decode([0xe9, 0x10, 0, 0, 0])?.flow == .jump)
        #expect(decode([0xe9, 0x10, 0, 0, 0])?.target == 0x1015)
        #expect(decode([0xeb, 0xfe])?.target == 0x1000)
        #expect(decode([0x74, 0x02])?.flow == .conditionalJump)
        #expect(decode([0x0f, 0x84, 0, 1, 0, 0])?.target == 0x1106)
        #expect(decode([0xe8, 0, 0, 0, 0])?.flow == .call)
        #expect(decode([0xc3])?.flow == .ret)
        #expect(decode([0xff, 0xe0])?.flow == .indirectJump)      // jmp *%rax
        #expect(decode([0xff, 0xd0])?.flow == .indirectCall)      // call *%rax
        #expect(decode([0x0f, 0x0b])?.flow == .stop)              // ud2
        #expect(decode([0x90])?.isPadding == true)
        #expect(decode([0x66, 0x0f, 0x1f, 0x44, 0, 0])?.isPadding == true)
        #expect(decode([0xf3, 0xa4])?.isRepString == true)        // rep movsb
        #expect(decode([0x48, 0x89, 0xc7])?.flow == .fallThrough) // mov %rax,%rdi
        // jmp *0x4060e0(,%rcx,8): a jump table
        let table = decode([0xff, 0x24, 0xcd, 0xe0, 0x60, 0x40, 0x00])
        #expect(table?.flow == .indirectJump)
        #expect(table?.memHasIndex == true)
        #expect(table?.disp == 0x4060e0)
        // ud0 %edi,%edi (0f ff /r): three bytes, as objdump decodes them, and execution
        // stops there like ud2; the fourth byte is not part of it.
        let ud0 = decode([0x0f, 0xff, 0xff, 0xff])
        #expect(ud0?.length == 3)
        #expect(ud0?.flow == .stop)
        #expect(decode([0x06]) == nil)  // push %es: invalid in 64-bit mode
    }
}
