import Foundation
import OvlTestSupport
import Testing
@testable import OvlCore

/// The small stores that replaced sets, arrays and searches on the engine's paths, each
/// against the plain Swift structure it stands for.
@Suite struct CompactStorageTests {
    /// Leaders kept as a bitmap over a span answer as a set of the same addresses does
    /// for every address of the span, and (with nothing kept outside it) false outside;
    /// a span too wide for a bitmap falls back to a set with the same answers.
    struct Span: Sendable, CustomStringConvertible {
        let low: UInt64, high: UInt64
        var description: String { "0x\(String(low, radix: 16))..<0x\(String(high, radix: 16))" }
    }

    @Test(arguments: [Span(low: 0x40_1000, high: 0x40_9000), Span(low: 0xffff_ffff_8100_0000, high: 0xffff_ffff_8100_4000),
                      Span(low: 0x1000, high: 0x1000 + (1 << 29))])
    func leaderMarksAnswerAsASet(_ span: Span) {
        let (low, high) = (span.low, span.high)
        var marks = LeaderMarks(low: low, high: high)
        var oracle = Set<UInt64>()
        var mix = SplitMix(seed: low ^ high)
        for _ in 0..<5_000 {
            // Mostly inside, some just outside on either side.
            let a = low &- 64 &+ mix.next() % (min(high - low, 1 << 16) + 128)
            marks.insert(a)
            if a >= low && a < high { oracle.insert(a) }
        }
        marks.insert(high - 1)
        oracle.insert(high - 1)
        for a in (low &- 64)..<(low + min(high - low, 1 << 16) + 64) {
            #expect(marks.contains(a) == oracle.contains(a), "address 0x\(String(a, radix: 16))")
        }
        #expect(marks.contains(high - 1))
        #expect(!marks.contains(high))
    }

    /// Inline instruction bytes read back what they were given, in order, for every
    /// length an instruction can have, and a field written into them lands where a write
    /// into an array would.
    @Test func instructionBytesHoldWhatAnArrayHolds() {
        var mix = SplitMix(seed: 7)
        for length in 0...15 {
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: mix.next()) }
            var inline = InstructionBytes(bytes)
            #expect(Array(inline) == bytes)
            #expect(inline.count == length)
            // Copied whole from memory, between other bytes: the same, and nothing more.
            let around = [0xcc] + bytes + [0xcc]
            let copied = around.withUnsafeBytes { InstructionBytes(copying: $0.baseAddress! + 1, count: length) }
            #expect(Array(copied) == bytes, "length \(length), copied")
            guard length >= 4 else { continue }
            let at = Int(mix.next() % UInt64(length - 3))
            let field: [UInt8] = [0xde, 0xad, 0xbe, 0xef]
            var array = bytes
            array.replaceSubrange(at..<(at + 4), with: field)
            inline.write(field, at: at)
            #expect(Array(inline) == array, "length \(length), field at \(at)")
            inline[length - 1] = 0x5a
            array[length - 1] = 0x5a
            #expect(Array(inline) == array)
        }
        let literal: InstructionBytes = [0x0f, 0x1f, 0x00]
        #expect(Array(literal) == [0x0f, 0x1f, 0x00])
    }

    /// A unit's address index answers as a dictionary does, through growth from empty,
    /// from a reserved size, and after being emptied for another unit (kept, or replaced
    /// when far too large), for clustered addresses (a unit's instructions) and scattered
    /// ones, and keeps the first item of an address given twice.
    @Test func addressIndexAnswersAsADictionary() {
        var mix = SplitMix(seed: 0xadd7)
        var index = AddressIndex()
        #expect(index[0x401000] == nil)
        // How each round starts: 0 a new index, 1 a new one with room reserved, 2 the last
        // one emptied (kept when at most four times the size needed).
        let rounds: [(start: Int, n: Int)] = [(0, 0), (1, 1), (2, 700), (2, 5_000), (2, 2_000), (2, 30), (0, 20_000), (2, 20_000), (1, 3_000)]
        for (round, (start, n)) in rounds.enumerated() {
            switch start {
            case 0: index = AddressIndex()
            case 1: index = AddressIndex(); index.reserveCapacity(n)
            default: index.reset(expecting: n)
            }
            var oracle: [UInt64: Int] = [:]
            // Round 7 scatters its addresses over 2^50 bytes.
            var at: UInt64 = round % 2 == 0 || round == 7 ? 0x40_1000 : 0xffff_ffff_8100_0000
            for i in 0..<n {
                at += round == 7 ? mix.next() % (1 << 36) + 1 : mix.next() % 15 + 1
                let key = mix.next() % 8 == 0 && !oracle.isEmpty ? oracle.keys.first! : at
                index.insertIfAbsent(key, i)
                if oracle[key] == nil { oracle[key] = i }
            }
            #expect(index.count == oracle.count, "round \(round)")
            var wrong = 0
            for (k, v) in oracle where index[k] != v { wrong += 1 }
            for _ in 0..<1_000 {
                let k = at &+ mix.next() % 4096 + 1
                if index[k] != oracle[k] { wrong += 1 }
            }
            #expect(wrong == 0, "round \(round): \(wrong) answers differ")
        }
    }

    /// The layout makes an item an instruction: its rare fields live in the unit's extras,
    /// so that an item stays within 48 bytes (it was about 100 with them inline).
    @Test func codeItemsStaySmall() {
        #expect(MemoryLayout<CodeItem>.stride <= 48, "CodeItem is \(MemoryLayout<CodeItem>.stride) bytes")
        #expect(MemoryLayout<CodeItem>.stride + MemoryLayout<ItemExtra>.stride >= 80, "ItemExtra is \(MemoryLayout<ItemExtra>.stride) bytes")
    }

    /// An instruction's absolute fields: two are held and read back in order, a third is
    /// refused (the rewriter then refuses the instruction instead of dropping a field).
    @Test func absoluteFieldsHoldTwo() {
        var fields = AbsoluteFields()
        #expect(fields.isEmpty && Array(fields).isEmpty)
        let first = fields.append((offset: 3, size: 4, ref: .code(0x401000)))
        let second = fields.append((offset: 7, size: 4, ref: .fixed(0x4c0000)))
        let third = fields.append((offset: 11, size: 8, ref: .jumpThunk(0x402000)))
        #expect(first && second && !third)
        let read = Array(fields)
        #expect(read.count == 2)
        #expect(read[0].offset == 3 && read[0].size == 4 && read[0].ref == .code(0x401000))
        #expect(read[1].offset == 7 && read[1].size == 4 && read[1].ref == .fixed(0x4c0000))
    }

    /// The name index finds what a scan of every function's name and aliases finds, for
    /// every name and alias of a real image and for a name it does not hold.
    @Test func functionsByNameAsAScanFindsThem() throws {
        let p = try Program.load(path: TestPaths.samples + "/crc-glibc")
        func scan(_ n: String) -> [Int] { p.functions.indices.filter { p.functions[$0].name == n || p.functions[$0].aliases.contains(n) } }
        var names = Set<String>()
        for f in p.functions { names.insert(f.name); names.formUnion(f.aliases) }
        #expect(names.count > 1_000)
        for n in names {
            #expect(p.functionIndices(named: n) == scan(n), "\(n)")
            #expect(p.functionIndex(named: n) == scan(n).first)
        }
        #expect(p.functionIndices(named: "no such function here").isEmpty)
    }
}
