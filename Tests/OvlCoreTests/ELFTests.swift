import Foundation
import OvlTestSupport
import Testing
@testable import OvlCore

@Suite struct ELFTests {
    @Test func readsEverySample() throws {
        let bins = Fixture.sampleBinaries
        #expect(bins.count >= 10)
        for path in bins {
            let elf = try ELFFile(path: path)
            #expect(elf.type == ELFFile.ET_EXEC, "\(path)")
            let text = try #require(elf.section(named: ".text"), "\(path)")
            #expect(text.isExecutable)
            #expect(elf.section(containing: elf.entry)?.name == ".text")
            #expect(elf.symbols.contains { $0.name == "main" && $0.isFunction })
            #expect(elf.hasCodeRelocations, "\(path) was linked with --emit-relocs")
            // Every relocation section names a real section.
            for rs in elf.relocationSections { #expect(rs.appliesTo < elf.sections.count) }
        }
    }

    @Test(Tools.needed("readelf"))
    func agreesWithReadelfOnSectionsAndSymbols() throws {
        let path = Fixture.samples + "/crc"
        let elf = try ELFFile(path: path)
        let r = try Fixture.run(try Tools.path("readelf"), ["-SW", path])
        // "  [ 2] .text             PROGBITS        0000000000401010 001010 005d60 00  AX  0   0 16"
        var checked = 0
        for line in r.out.split(separator: "\n") {
            let parts = line.split(separator: "]", maxSplits: 1)
            guard parts.count == 2, line.contains("["), let idx = Int(parts[0].split(separator: "[").last!.trimmingCharacters(in: .whitespaces)) else { continue }
            let f = parts[1].split(separator: " ", omittingEmptySubsequences: true)
            guard idx > 0, f.count >= 6, let addr = UInt64(f[2], radix: 16), let size = UInt64(f[4], radix: 16) else { continue }
            #expect(elf.sections[idx].name == String(f[0]))
            #expect(elf.sections[idx].address == addr)
            #expect(elf.sections[idx].size == size)
            checked += 1
        }
        #expect(checked == elf.sections.count - 1)  // all but the null section
        let syms = try Fixture.run("readelf", ["-sW", path])
        let funcCount = syms.out.split(separator: "\n").filter { $0.contains(" FUNC ") }.count
        #expect(elf.symbols.filter { $0.isFunction }.count == funcCount)
    }

    /// A corpus of broken inputs: each must give an OvlError naming the file, never a crash.
    @Test func malformedInputsGiveClearErrors() throws {
        let good = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixture.samples + "/crc")))
        var cases: [(String, [UInt8], String)] = [
            ("empty", [], "not an ELF file"),
            ("text", Array("hello world, not an image\n".utf8), "not an ELF file"),
            ("header only", Array(good[0..<40]), "truncated"),
            ("cut at 64", Array(good[0..<64]), "truncated"),
            ("cut in half", Array(good[0..<(good.count / 2)]), "truncated"),
            ("cut before end", Array(good[0..<(good.count - 10)]), "truncated"),
        ]
        var b32 = good; b32[4] = 1
        cases.append(("32-bit", b32, "32-bit"))
        var be = good; be[5] = 2
        cases.append(("big-endian", be, "big-endian"))
        var arm = good; arm[18] = 183; arm[19] = 0
        cases.append(("aarch64", arm, "AArch64"))
        var rel = good; rel[16] = 1; rel[17] = 0
        cases.append(("relocatable", rel, "relocatable"))
        var noSections = good
        for i in 40..<48 { noSections[i] = 0 }
        cases.append(("no section headers", noSections, "no section headers"))
        var farSections = good
        farSections[47] = 0x7f
        cases.append(("section headers past the end", farSections, "truncated"))
        for (name, bytes, expected) in cases {
            do {
                _ = try Program.build(elf: ELFFile(path: "bad/\(name)", bytes: bytes))
                Issue.record("\(name): accepted")
            } catch let e as OvlError {
                #expect(e.description.hasPrefix("bad/\(name): "), "\(name): \(e)")
                #expect(e.description.contains(expected), "\(name): \(e)")
            }
        }
    }

    @Test(Tools.needed("strip"))
    func strippedImageIsRefusedWithAReason() throws {
        let dir = Fixture.tempDir()
        let copy = dir + "/stripped"
        try FileManager.default.copyItem(atPath: Fixture.samples + "/crc", toPath: copy)
        try #require(try Fixture.run(try Tools.path("strip"), [copy]).status == 0)
        #expect(throws: OvlError.self) { try Program.load(path: copy) }
        do { _ = try Program.load(path: copy) } catch let e as OvlError { #expect(e.description.contains("no function symbols")) }
    }

    @Test func missingFileAndDirectory() {
        #expect(throws: OvlError.file("/nonexistent/x", "no such file")) { try ELFFile(path: "/nonexistent/x") }
        #expect(throws: OvlError.file("/tmp", "is a directory, not an ELF image")) { try ELFFile(path: "/tmp") }
    }

    /// Random corruption of the headers and tables never crashes the reader or decoder:
    /// each damaged image is either read (the damage hit bytes that do not matter) or
    /// refused with an OvlError naming the file, never another error.
    @Test func randomCorruptionNeverCrashes() throws {
        let good = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixture.samples + "/jumptab")))
        var rng = SplitMix(seed: 7)
        let elf = try ELFFile(path: "x", bytes: good)
        let shoff = Int(elf.bytes.readLE64(40))
        var refused = 0
        for round in 0..<300 {
            var b = good
            for _ in 0..<8 {
                // Mostly the ELF header and the section headers, where damage matters.
                let region = rng.next() % 2 == 0 ? 0..<64 : shoff..<min(b.count, shoff + 64 * elf.sections.count)
                let i = region.lowerBound + Int(rng.next() % UInt64(region.count))
                b[i] = UInt8(truncatingIfNeeded: rng.next())
            }
            do {
                _ = try Program.build(elf: ELFFile(path: "fuzz", bytes: b))
            } catch let e as OvlError {
                refused += 1
                #expect(e.description.hasPrefix("fuzz: "), "round \(round): \(e)")
            } catch {
                Issue.record("round \(round): not an OvlError: \(error)")
            }
        }
        // Eight random bytes in the headers break most images: the refusals are real.
        #expect(refused > 100, "\(refused) of 300 damaged images refused")
    }
}
