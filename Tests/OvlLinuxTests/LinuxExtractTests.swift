import Foundation
import OvlTestSupport
import XCTest
@testable import OvlCore

/// The Linux analysis on the committed extract of Samples/linux/run.sh's kernel
/// (Samples/linux/extract/): the vmlinux reduced to what the analysis reads, excerpts of
/// the boot and workload traces, and the figures the full run measured on the whole
/// vmlinux. No kernel build needed.
enum LinuxExtract {
    static let root = TestPaths.root
    static let dir = root + "/Samples/linux/extract"
    static let configPath = root + "/Samples/linux/linux.toml"
    static let bootTrace = dir + "/boot.trace"
    static let workloadTrace = dir + "/workload.trace"

    /// The reduced vmlinux, decompressed once into a temporary directory.
    static let image: String = {
        let tmp = NSTemporaryDirectory() + "ovl-linux-extract-\(getpid())"
        try! FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        let out = tmp + "/vmlinux"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["xz", "-dc", dir + "/vmlinux.xz"]
        FileManager.default.createFile(atPath: out, contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: out)!
        try! p.run()
        p.waitUntilExit()
        precondition(p.terminationStatus == 0, "xz -dc \(dir)/vmlinux.xz failed")
        return out
    }()

    static let config: Config = try! Config.load(path: configPath)
    static let program: Program = try! Program.load(path: image, options: ProgramOptions(excludedSections: config.excludeSections))

    /// What run.sh measured on the whole vmlinux (expected.json).
    nonisolated(unsafe) static let expected: [String: Any] = {
        let d = FileManager.default.contents(atPath: dir + "/expected.json")!
        return try! JSONSerialization.jsonObject(with: d) as! [String: Any]
    }()
    static func int(_ k: String) -> Int { (expected[k] as! NSNumber).intValue }

    /// XCTest's form of `Tools.needed`: the extract needs xz; without it a test is
    /// skipped (the report says so), or fails in CI.
    static func requireXZ() throws {
        guard Tools.which("xz") == nil else { return }
        if Tools.ci { throw Tools.Missing(tool: "xz") }
        throw XCTSkip("not installed: xz (scripts/deps.sh installs xz-utils)")
    }
}

final class LinuxImageTests: XCTestCase {
    override func setUpWithError() throws { try LinuxExtract.requireXZ() }

    func testCodeBytesAgainstTextSection() throws {
        let p = LinuxExtract.program
        let text = try XCTUnwrap(p.elf.section(named: ".text"))
        XCTAssertEqual(Int(text.size), LinuxExtract.int("textSize"), ".text of the extract is the kernel's .text")
        XCTAssertEqual(p.codeBytes, LinuxExtract.int("codeBytes"), "the extract decodes to the code bytes the full vmlinux had")
        XCTAssertEqual(p.functions.count, LinuxExtract.int("functions"))
        // An x86-64 kernel's .text holds large alignment gaps; code bytes leave them out.
        XCTAssertLessThan(p.codeBytes, Int(text.size))
        XCTAssertGreaterThan(p.paddingBytes, 100_000)
        XCTAssertEqual(p.codeBytes + p.paddingBytes, p.textSectionBytes)
        XCTAssertTrue(p.elf.hasCodeRelocations, "vmlinux kept its relocations (RELOCATABLE + RANDOMIZE_BASE)")
        // Linker-script markers without a size (__entry_text_end, __kprobes_text_end) are
        // followed by a megabyte of int3 fill (the SRSO alias alignment): padding, not a
        // function of the marker's. No kernel function is anywhere near that large.
        XCTAssertLessThan(p.functions.map(\.size).max() ?? 0, 64 * 1024)
        for name in ["__entry_text_end", "__kprobes_text_end", "__cpuidle_text_end"] {
            if let f = p.functionIndex(named: name) { XCTAssertLessThan(p.functions[f].size, 4096, name) }
        }
        XCTAssertTrue(CorePresets.isLinuxKernel(p))
    }

    func testInitTextIsExcludedLikeThePaper() throws {
        let p = LinuxExtract.program
        XCTAssertTrue(p.excludedSections.contains(".init.text"))
        XCTAssertFalse(p.analysedSections.contains(".init.text"))
        XCTAssertFalse(p.functions.contains { $0.section == ".init.text" })
        // start_kernel is __init: in the symbol table, not among the analysed functions.
        XCTAssertTrue(p.elf.symbols.contains { $0.name == "start_kernel" && $0.isFunction })
        XCTAssertNil(p.functionIndex(named: "start_kernel"))
        // Counting .init.text would add its bytes.
        let all = try Program.load(path: LinuxExtract.image)
        let initText = try XCTUnwrap(p.elf.section(named: ".init.text"))
        XCTAssertGreaterThan(all.codeBytes, p.codeBytes)
        XCTAssertLessThanOrEqual(all.codeBytes - p.codeBytes, Int(initText.size) + 8192)
    }

    func testLinuxCoreSetResolves() throws {
        let p = LinuxExtract.program
        let core = CoreSet.resolve(LinuxExtract.config, program: p)
        for name in ["__schedule", "entry_SYSCALL_64", "asm_exc_page_fault", "exc_page_fault", "handle_mm_fault",
                     "__switch_to_asm", "ret_from_fork", "memcpy", "startup_64", "serial8250_console_write"] {
            let f = try XCTUnwrap(p.functionIndex(named: name), "\(name) is a function of the kernel")
            XCTAssertTrue(core.contains(Int32(f)), "\(name) is core")
        }
        // Every glob of linux.toml names at least one function: no stale entries.
        for g in LinuxExtract.config.coreFunctions {
            let n = p.functions.filter { Glob.matches(g, $0.name) || $0.aliases.contains { Glob.matches(g, $0) } }.count
            XCTAssertGreaterThan(n, 0, "linux.toml core entry \(g) matches no function")
        }
        // The preset's section entries reach code merged into .text, through the
        // bracketing symbols (__entry_text_start…).
        for sec in [".entry.text", ".sched.text", ".noinstr.text", ".cpuidle.text", ".softirqentry.text"] {
            let r = try XCTUnwrap(KernelTextRanges.range(of: sec, in: p.elf), "\(sec) has bracketing symbols")
            let members = p.functions.indices.filter { !p.functions[$0].isGap && r.contains(p.functions[$0].address) }
            XCTAssertFalse(members.isEmpty)
            XCTAssertTrue(members.allSatisfy { core.contains(Int32($0)) }, "every function of \(sec) is core")
        }
        XCTAssertTrue(KernelTextRanges.range(of: ".sched.text", in: p.elf)!.contains(p.functions[p.functionIndex(named: "__schedule")!].address))
        XCTAssertEqual(core.count, LinuxExtract.int("coreFunctions"))
    }

    func testKernelPins() throws {
        let p = LinuxExtract.program
        let pins = KernelPins.analyse(program: p, core: CoreSet.resolve(LinuxExtract.config, program: p))
        let byName = Dictionary(pins.tables.map { ($0.section, $0) }, uniquingKeysWith: { a, _ in a })
        let expected = LinuxExtract.expected["pins"] as! [String: [String: Any]]
        XCTAssertEqual(Set(byName.keys), Set(expected.keys), "the same tables as on the full vmlinux")
        for (name, e) in expected {
            let t = try XCTUnwrap(byName[name])
            XCTAssertEqual(t.references, (e["references"] as! NSNumber).intValue, name)
            XCTAssertEqual(t.verdict.rawValue, e["verdict"] as? String, name)
        }
        // The exception table: the build cleared its relocations after sorting it; its
        // entries (insn, fixup) are read instead, two per entry, none lost.
        let ex = try XCTUnwrap(byName["__ex_table"])
        XCTAssertEqual(ex.verdict, .lookup)
        XCTAssertEqual(ex.source, "entries (relocations cleared by the build)")
        let exSize = Int(try XCTUnwrap(p.elf.section(named: "__ex_table")).size)
        XCTAssertEqual(ex.references + ex.intoExcluded, exSize / 12 * 2)
        XCTAssertTrue(ex.functions.contains("copy_user_generic_unrolled"))
        // Jump labels and static calls live inside .rodata, found by __start_/__stop_ symbols.
        XCTAssertEqual(byName["__jump_table"]?.container, ".rodata")
        XCTAssertEqual(byName["__jump_table"]?.verdict, .pins)
        XCTAssertEqual(byName[".altinstructions"]?.verdict, .rewrite)
        XCTAssertGreaterThan(byName[".altinstructions"]?.intoExcluded ?? 0, 0, "replacements live in excluded .altinstr_replacement")
        // Pinned functions are analysed code, never .init.text, and each has a reason.
        XCTAssertEqual(pins.pinned.count, LinuxExtract.int("pinnedFunctions"))
        for f in pins.pinned {
            XCTAssertFalse(f.tables.isEmpty)
            XCTAssertNotNil(p.functionIndex(named: f.name))
            XCTAssertTrue([.pins, .lookup].contains(byName[f.tables.keys.first!]!.verdict))
        }
        XCTAssertTrue(pins.pinned.contains { $0.name == "__schedule" && $0.core != nil }, "__schedule: jump label, already core")
        XCTAssertEqual(pins.pinnedBytes, pins.pinned.reduce(0) { $0 + $1.size })
        XCTAssertLessThan(pins.pinnedBytes, pins.codeBytes / 4)
    }
}

final class LinuxProfileTests: XCTestCase {
    override func setUpWithError() throws { try LinuxExtract.requireXZ() }

    nonisolated(unsafe) static var session: Session?
    static func open() throws -> Session {
        if let s = session { return s }
        var c = LinuxExtract.config
        c.gamma = 0
        let s = try Session.open(image: LinuxExtract.image, profiles: [LinuxExtract.bootTrace, LinuxExtract.workloadTrace],
                                 config: c, showProgress: false)
        session = s
        return s
    }

    func testTracesMatchTheImage() throws {
        let p = LinuxExtract.program
        for t in [LinuxExtract.bootTrace, LinuxExtract.workloadTrace] {
            var header: TraceFile.Header?
            try TraceFile.read(try ByteStream(path: t), header: { header = $0 }, sink: { _ in })
            XCTAssertEqual(header?.codeHash, TraceFile.codeHash(of: p.elf), "\(t) was taken of this kernel")
            XCTAssertGreaterThan(header?.count ?? 0, 10_000)
        }
    }

    func testSweepIsMonotonicAndBootDiffersFromWorkload() throws {
        let s = try Self.open()
        let model = CostModel(session: s)
        var rows: [(Table1Row, [PhaseCost])] = []
        for g in stride(from: 0.0, through: 10.0, by: 2.0) {
            var c = s.config
            c.gamma = g
            try s.update(c)
            let cl = s.cluster(recordEvents: false)
            rows.append((s.statistics(cl), model.costs(cl)))
        }
        for (a, b) in zip(rows, rows.dropFirst()) {
            XCTAssertLessThanOrEqual(a.0.coreLimit, b.0.coreLimit, "core may grow more as γ grows")
            XCTAssertLessThanOrEqual(a.0.residentBytes, b.0.residentBytes + 4096, "resident code grows with γ")
            XCTAssertGreaterThanOrEqual(a.0.reductionPercent + 0.2, b.0.reductionPercent, "memory reduction falls as γ grows")
        }
        let r0 = rows[0], r10 = rows.last!
        XCTAssertGreaterThan(r0.0.reductionPercent, 20)
        XCTAssertLessThan(r0.0.totalMemory, r0.0.originalTextBytes)
        XCTAssertEqual(r0.1.map(\.phase).count, 2)
        let boot0 = r0.1[0], work0 = r0.1[1]
        XCTAssertGreaterThan(boot0.loads, 0)
        XCTAssertGreaterThan(work0.loads, 0)
        XCTAssertNotEqual(boot0.loads, work0.loads, "boot and workload are different phases")
        // More core can only spare loads in total.
        XCTAssertLessThanOrEqual(r10.1.reduce(0) { $0 + $1.loads }, r0.1.reduce(0) { $0 + $1.loads })
        // Executed code is a fraction of the code; the excerpts see less than the full run.
        XCTAssertGreaterThan(s.executedCodeBytes, 10_000)
        XCTAssertLessThan(s.executedCodeBytes, s.program.codeBytes / 2)
        XCTAssertLessThanOrEqual(s.executedCodeBytes, LinuxExtract.int("executedCodeBytes"))
    }
}
