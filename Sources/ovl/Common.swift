import ArgumentParser
import Foundation
import OvlCore

/// Options shared by every command that opens an image.
struct ImageOptions: ParsableArguments {
    @Argument(help: "The ELF image: a static x86-64 program, or a Linux vmlinux (which rewrite refuses).", completion: .file())
    var image: String

    @Option(name: .customLong("profile"), help: ArgumentHelp("A profile: an ovl trace, a QEMU -d exec log or a BOLT .fdata file; `-` reads standard input. Repeat for phases (boot, workload).", valueName: "file"), completion: .file())
    var profiles: [String] = []

    @OptionGroup var settings: ConfigOptions

    @Flag(help: "Never draw a progress line.")
    var noProgress = false

    func resolvedConfig() throws -> Config { try settings.resolvedConfig() }

    /// Every file this run reads, for `OutputFile.check`.
    var inputFiles: [(what: String, path: String)] {
        [("the image", image)] + profiles.map { ("a profile", $0) } + (settings.config.map { [("the configuration", $0)] } ?? [])
    }

    func openSession() throws -> Session {
        let c = try resolvedConfig()
        let s = try Session.open(image: image, profiles: profiles, config: c, showProgress: !noProgress && Progress.stderrIsTerminal)
        warnAboutUnmatchedGlobs(s)
        return s
    }
}

/// The configuration flags every command that clusters takes (analyze, sweep, explore,
/// export, rewrite): a file, then single settings on top.
struct ConfigOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A TOML configuration file (core functions, γ, buffer size, flash model).", valueName: "file"), completion: .file(extensions: ["toml"]))
    var config: String?

    // `.unconditional` takes the next word even when it starts with "-", so that
    // `--gamma -1` gets ovl's own message rather than "missing value".
    @Option(parsing: .unconditional, help: ArgumentHelp("γ: how much core may grow, in percent of its size.", valueName: "percent"))
    var gamma: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Code buffer size in bytes (suffixes K and M allowed).", valueName: "bytes"))
    var buffer: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Number of code buffers (least recently used is replaced).", valueName: "n"))
    var buffers: Int?

    @Option(help: ArgumentHelp("Coalescing unit: block (the paper's chains) or function.", valueName: "unit"), completion: .list(Granularity.allCases.map(\.rawValue)))
    var granularity: String?

    @Option(name: .customLong("core"), help: ArgumentHelp("Add core functions by name or glob (repeatable); `section:NAME` pins a section.", valueName: "glob"))
    var core: [String] = []

    @Option(help: ArgumentHelp("Built-in core set: auto, static, linux or none.", valueName: "preset"), completion: .list(CorePreset.allCases.map(\.rawValue)))
    var preset: String?

    @Option(help: ArgumentHelp("Clustering method: figure2 (the paper's coalescing) or affinity (what ovl optimize chooses).", valueName: "method"))
    var method: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("With --method affinity: bytes of executed code kept resident beyond core (K and M allowed).", valueName: "bytes"))
    var residentBudget: String?

    /// The configuration: the file, then flags on top.
    func resolvedConfig() throws -> Config {
        var c = try config.map { try Config.load(path: $0) } ?? Config()
        if let g = gamma {
            guard let v = Double(g) else { throw OvlError("--gamma must be a percentage such as 4 or 2.5, not '\(g)'") }
            c.gamma = v
        }
        if let b = buffer { c.bufferSize = try parseSize(b, what: "--buffer") }
        if let n = buffers { c.buffers = n }
        if let g = granularity {
            guard let v = Granularity(rawValue: g) else { throw OvlError("--granularity must be block or function, not '\(g)'") }
            c.granularity = v
        }
        if let p = preset {
            guard let v = CorePreset(rawValue: p) else { throw OvlError("--preset must be auto, static, linux or none, not '\(p)'") }
            c.corePreset = v
        }
        if let m = method {
            guard let v = ClusteringMethod(rawValue: m) else { throw OvlError("--method must be figure2 or affinity, not '\(m)'") }
            c.method = v
        }
        if let b = residentBudget { c.residentBudget = try parseSize(b, what: "--resident-budget") }
        c.coreFunctions += core
        try c.validate(source: "command line")
        return c
    }
}

/// A core glob that names no function is most likely a typo: say so (the run goes on).
func warnAboutUnmatchedGlobs(_ s: Session) {
    for g in s.core.unmatchedGlobs {
        FileHandle.standardError.write(Data("ovl: warning: core glob '\(g)' matches no function in \(s.program.path)\n".utf8))
    }
}

/// "2048", "2K", "1M".
func parseSize(_ s: String, what: String) throws -> Int {
    let t = s.trimmingCharacters(in: .whitespaces).uppercased()
    var mult = 1
    var num = Substring(t)
    if t.hasSuffix("K") || t.hasSuffix("KB") { mult = 1024; num = t.dropLast(t.hasSuffix("KB") ? 2 : 1) }
    else if t.hasSuffix("M") || t.hasSuffix("MB") { mult = 1 << 20; num = t.dropLast(t.hasSuffix("MB") ? 2 : 1) }
    else if t.hasSuffix("B") { num = t.dropLast() }
    guard let v = Int(num) else { throw OvlError("\(what) must be a size in bytes such as 2048 or 2K, not '\(s)'") }
    let (r, overflow) = v.multipliedReportingOverflow(by: mult)
    guard !overflow else { throw OvlError("\(what) \(s) is too large") }
    return r
}

/// Runs a command body, turning engine errors into one line on standard error and a
/// non-zero exit status.
func guarded(_ body: () throws -> Void) throws {
    Interrupt.install()
    do {
        try body()
    } catch let e as OvlError {
        FileHandle.standardError.write(Data("ovl: \(e.description)\n".utf8))
        throw ExitCode(e.description == "interrupted" ? 130 : 1)
    }
}

/// Writes `text` to `path` through a temporary file and a rename, so a failed run leaves
/// no partial output and never clobbers an input.
func writeAtomically(_ text: String, to path: String, inputs: [String] = []) throws {
    try writeAtomically(Data(text.utf8), to: path, inputs: inputs)
}

func writeAtomically(_ data: Data, to path: String, inputs: [String] = []) throws {
    try OutputFile.write(data, to: path, inputs: inputs)
}

func printJSON<T: Encodable>(_ value: T) throws {
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    let data = try enc.encode(value)
    FileHandle.standardOutput.write(data)
    FileHandle.standardOutput.write(Data("\n".utf8))
}
