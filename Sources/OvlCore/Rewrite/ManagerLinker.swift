import Foundation

/// Compiles the overlay manager (`OverlayManagerSource`) together with the load rules
/// (`Sources/COverlayRules/rules.c`, the file the cost model's replay is built from) and
/// links it at the addresses the rewriter chose, with the system's `cc` and `ld`.
struct ManagerLinker {
    struct Linked {
        var textAddress: UInt64
        var text: [UInt8]
        var dataAddress: UInt64
        var data: [UInt8]
        var bssAddress: UInt64
        var bssSize: Int
        var symbols: [String: UInt64]
    }

    /// The compiled manager and rules, kept in memory: the temporary directory the tools
    /// work in exists only while they run (`withWorkDirectory`), so nothing is left in
    /// /tmp whichever way the rewrite ends (an error, Ctrl-C, a crash in the layout).
    let objects: [(name: String, bytes: [UInt8])]

    /// Where `rules.c` and `ovl_rules.h` are: `OVL_RULES_DIR` when set, else the source
    /// tree this file was built from. The rewriter compiles that file, never a copy.
    static func rulesDirectory() throws -> String {
        if let d = ProcessInfo.processInfo.environment["OVL_RULES_DIR"], !d.isEmpty { return d }
        var url = URL(fileURLWithPath: #filePath)  // …/Sources/OvlCore/Rewrite/ManagerLinker.swift
        for _ in 0..<3 { url.deleteLastPathComponent() }
        let dir = url.appendingPathComponent("COverlayRules").path
        guard FileManager.default.fileExists(atPath: dir + "/rules.c") else {
            throw OvlError("the overlay manager is built from the load rules in COverlayRules/rules.c, which is not at \(dir); set OVL_RULES_DIR to the directory holding rules.c and include/ovl_rules.h")
        }
        return dir
    }

    /// Runs `body` in a fresh temporary directory and removes it afterwards, also when
    /// the process is killed by a signal meanwhile (`TempCleanup`).
    static func withWorkDirectory<T>(_ body: (String) throws -> T) throws -> T {
        let dir = NSTemporaryDirectory() + "ovl-manager-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        TempCleanup.register(dir)
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            TempCleanup.unregister()
        }
        return try body(dir)
    }

    /// Compiles the manager and the rules once per rewrite, for an image with `buffers`
    /// code buffers. Optimised for size: every byte of it stays in memory.
    init(buffers: Int) throws {
        let rules = try ManagerLinker.rulesDirectory()
        objects = try ManagerLinker.compile(OverlayManagerSource.text, named: "manager",
                                            flags: ManagerLinker.compileFlags(buffers: buffers, rules: rules), rules: rules)
    }

    /// Compiles a manager source and the load rules with `flags`: the objects, kept in memory.
    static func compile(_ source: String, named name: String, flags: [String], rules: String) throws -> [(name: String, bytes: [UInt8])] {
        try withWorkDirectory { dir in
            try source.write(toFile: dir + "/\(name).c", atomically: false, encoding: .utf8)
            try run("cc", flags + ["-c", dir + "/\(name).c", "-o", dir + "/\(name).o"])
            try run("cc", flags + ["-c", rules + "/rules.c", "-o", dir + "/rules.o"])
            return try ["\(name).o", "rules.o"].map { file in
                guard let d = FileManager.default.contents(atPath: dir + "/" + file) else { throw OvlError("cc wrote no \(file)") }
                return (file, [UInt8](d))
            }
        }
    }

    /// Links `objects` with the linker script `script` (and `extra` ld arguments).
    static func link(_ objects: [(name: String, bytes: [UInt8])], script: String, extra: [String] = []) throws -> ELFFile {
        try withWorkDirectory { dir -> ELFFile in
            try script.write(toFile: dir + "/manager.ld", atomically: false, encoding: .utf8)
            var paths: [String] = []
            for o in objects {
                try Data(o.bytes).write(to: URL(fileURLWithPath: dir + "/" + o.name))
                paths.append(dir + "/" + o.name)
            }
            let out = dir + "/manager.elf"
            try run("ld", ["-static", "-nostdlib", "-T", dir + "/manager.ld", "-o", out] + extra + paths)
            return try ELFFile(path: out)
        }
    }

    /// The manager's sizes: code (with its constants), initialised data, zero-filled data.
    struct Sizes: Sendable, Equatable {
        var text: Int
        var data: Int
        var bss: Int
    }

    nonisolated(unsafe) private static var sizeCache: [Int: Sizes] = [:]
    private static let sizeLock = NSLock()

    /// The manager's sizes for an image with `buffers` code buffers, measured by building
    /// and linking it once per process (they do not depend on where it is linked).
    static func sizes(buffers: Int) throws -> Sizes {
        sizeLock.lock()
        defer { sizeLock.unlock() }
        if let s = sizeCache[buffers] { return s }
        // A file cache across runs, keyed by everything the build depends on.
        let rules = try rulesDirectory()
        var key = OverlayManagerSource.text + "\u{0}\(buffers)\u{0}" + compileFlags(buffers: buffers, rules: "").joined(separator: " ")
        for f in ["/rules.c", "/include/ovl_rules.h"] { key += (try? String(contentsOfFile: rules + f, encoding: .utf8)) ?? "" }
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in key.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        let cacheDir = (ProcessInfo.processInfo.environment["XDG_CACHE_HOME"] ?? (NSHomeDirectory() + "/.cache")) + "/ovl"
        let cacheFile = cacheDir + "/manager-\(String(h, radix: 16)).sizes"
        if let t = try? String(contentsOfFile: cacheFile, encoding: .utf8) {
            let v = t.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            if v.count == 3 {
                let s = Sizes(text: v[0], data: v[1], bss: v[2])
                sizeCache[buffers] = s
                return s
            }
        }
        let l = try ManagerLinker(buffers: buffers)
        let linked = try l.link(text: 0x40_0000, data: 0x80_0000, bss: 0)
        let s = Sizes(text: linked.text.count, data: linked.data.count, bss: linked.bssSize)
        sizeCache[buffers] = s
        try? FileManager.default.createDirectory(atPath: cacheDir, withIntermediateDirectories: true)
        let tmp = cacheFile + ".\(getpid())"
        if (try? "\(s.text) \(s.data) \(s.bss)\n".write(toFile: tmp, atomically: false, encoding: .utf8)) != nil {
            if rename(tmp, cacheFile) != 0 { unlink(tmp) }
        }
        return s
    }

    static func compileFlags(buffers: Int, rules: String) -> [String] {
        ["-ffreestanding", "-fno-pic", "-fno-stack-protector", "-mno-red-zone", "-mgeneral-regs-only",
         "-Os", "-DOVL_MAX_BUFFERS=\(buffers)", "-fno-asynchronous-unwind-tables", "-fcf-protection=none", "-fno-tree-loop-distribute-patterns",
         "-I", rules + "/include"]
    }

    /// Links the manager with its code at `text`, initialised data at `data` and
    /// zero-filled data at `bss` (0 puts it right after the data).
    func link(text: UInt64, data: UInt64, bss: UInt64) throws -> Linked {
        let bssPlacement = bss == 0 ? "" : String(format: "0x%llx", bss)
        let script = """
        SECTIONS {
          .text 0x\(String(text, radix: 16)) : { *(.text .text.*) *(.rodata .rodata.*) }
          .data 0x\(String(data, radix: 16)) : { *(.data .data.*) }
          .bss \(bssPlacement) (NOLOAD) : { *(.bss .bss.* COMMON) }
          /DISCARD/ : { *(.comment) *(.note*) *(.eh_frame*) }
        }
        """
        let elf = try ManagerLinker.link(objects, script: script)
        guard let t = elf.section(named: ".text"), let d = elf.section(named: ".data") else {
            throw OvlError("linking the overlay manager produced no .text or .data")
        }
        let b = elf.section(named: ".bss")
        var syms: [String: UInt64] = [:]
        for s in elf.symbols where !s.name.isEmpty { syms[s.name] = s.value }
        return Linked(textAddress: t.address, text: Array(elf.contents(of: t)), dataAddress: d.address,
                      data: Array(elf.contents(of: d)), bssAddress: b?.address ?? (d.address + d.size),
                      bssSize: Int(b?.size ?? 0), symbols: syms)
    }

    static func run(_ tool: String, _ args: [String]) throws {
        let result: (status: Int32, output: Data)
        do { result = try Subprocess.run(tool, args) } catch {
            throw OvlError("cannot run \(tool) (needed to build the overlay manager): \(error)")
        }
        guard result.status == 0 else {
            throw OvlError("\(tool) failed building the overlay manager: \(String(decoding: result.output, as: UTF8.self).prefix(2000))")
        }
    }
}
