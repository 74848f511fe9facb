import ArgumentParser
import Foundation
import OvlCore

struct KernelPinsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernel-pins",
        abstract: "List the kernel tables that reference code and the functions they keep from moving.",
        discussion: """
            Needs a vmlinux linked with its relocations (x86-64: CONFIG_RELOCATABLE and \
            CONFIG_RANDOMIZE_BASE). Every non-code section whose relocations point into \
            analysed code is listed with its reference count, the functions it points into and \
            a verdict: `pins` (looked up or patched by address while the kernel runs: the code \
            cannot move), `rewrite` (boot-time patch sites or unwind data: movable once the \
            entries are rewritten) or `pointer` (function pointers: movable behind a stub). \
            Sections the configuration excludes (exclude_sections, e.g. .init.text) are not \
            analysed; references into them are counted apart.
            """)

    @Argument(help: "The vmlinux.", completion: .file())
    var image: String

    @Option(help: ArgumentHelp("A TOML configuration (exclude_sections, the core set).", valueName: "file"), completion: .file(extensions: ["toml"]))
    var config: String?

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @Option(help: ArgumentHelp("Functions named per table in the text report.", valueName: "n"))
    var list = 8

    @Option(help: ArgumentHelp("Also write a configuration: the given one with the pinned functions added to core.", valueName: "file"), completion: .file(extensions: ["toml"]))
    var writeConfig: String?

    func run() throws {
        try guarded {
            if let out = writeConfig {
                try OutputFile.check(outputs: [("--write-config", out)], inputs: [("the image", image)] + (config.map { [("the configuration", $0)] } ?? []))
            }
            let c = try config.map { try Config.load(path: $0) } ?? Config()
            try c.validate(source: config ?? "configuration")
            let program = try Program.load(path: image, options: ProgramOptions(excludedSections: c.excludeSections))
            guard program.elf.hasCodeRelocations else {
                throw OvlError.file(image, "has no relocations for its code; link with --emit-relocs (CONFIG_RELOCATABLE + CONFIG_RANDOMIZE_BASE)")
            }
            let pins = KernelPins.analyse(program: program, core: CoreSet.resolve(c, program: program))
            if let out = writeConfig {
                let original = config.flatMap { FileManager.default.contents(atPath: $0) }.flatMap { String(data: $0, encoding: .utf8) } ?? ""
                let names = pins.coreFunctionsTOML()
                var text = "# \(config ?? "the default configuration") with the \(names.count) functions the kernel's tables pin\n"
                text += "# added to core, written by `ovl kernel-pins --write-config`.\n"
                text += Self.addingCoreFunctions(names.map { "\"\($0)\"" }.joined(separator: ", "), to: original)
                _ = try Config.parse(text, path: out)
                try writeAtomically(text, to: out, inputs: [image] + (config.map { [$0] } ?? []))
            }
            if json {
                try printJSON(pins)
            } else {
                print(pins.text(listFunctions: list), terminator: "")
            }
        }
    }

    /// Adds names to `[core] functions = [...]`: into the existing array, or as a new key
    /// of `[core]`, or in a new `[core]` table.
    static func addingCoreFunctions(_ list: String, to text: String) -> String {
        guard !list.isEmpty else { return text }
        guard let core = text.range(of: #"(?m)^\[core\][ \t]*$"#, options: .regularExpression) else {
            return text + "\n[core]\nfunctions = [\(list)]\n"
        }
        var out = text
        let nextTable = text.range(of: #"(?m)^\["#, options: .regularExpression, range: core.upperBound..<text.endIndex)?.lowerBound ?? text.endIndex
        if let f = text.range(of: #"(?m)^[ \t]*functions[ \t]*=[ \t]*\["#, options: .regularExpression, range: core.upperBound..<nextTable) {
            out.insert(contentsOf: list + ", ", at: f.upperBound)
        } else {
            out.insert(contentsOf: "\nfunctions = [\(list)]", at: core.upperBound)
        }
        return out
    }
}
