import Foundation
import TOMLKit

/// Which built-in core set applies.
public enum CorePreset: String, Sendable, CaseIterable, Codable {
    /// Linux when the image has `start_kernel`, else static programs.
    case auto
    case `static`
    case linux
    /// No built-in core: only the functions the configuration names.
    case none
}

/// Where the rewritten image keeps its clusters.
public enum StorageBackend: String, Sendable, CaseIterable, Codable {
    /// A separate section, copied into the code buffer (the paper's prototype).
    case memory
    /// Left out of every loadable segment and read from the image file on demand.
    case file
}

/// How code is grouped into clusters.
public enum ClusteringMethod: String, Sendable, CaseIterable, Codable {
    /// The paper's Figure 2: greedy coalescing by edge weight, core growing within γ.
    case figure2
    /// `AffinityLayout`: resident code chosen by entries per byte within
    /// `resident_budget`, clusters by temporal affinity, unseen code by address.
    case affinity
}

/// Everything that decides a clustering and its cost. Read from TOML; command-line flags
/// override single fields; the explorer edits it live and exports it back as TOML.
public struct Config: Sendable, Equatable {
    /// Allowed growth of core, in percent of core's size (the paper's γ).
    public var gamma: Double = 4
    /// Code buffer size in bytes (the paper's BufSz).
    public var bufferSize: Int = 2048
    /// Number of code buffers, replaced least-recently-used first (§3.4's future work).
    public var buffers: Int = 1
    public var granularity: Granularity = .block
    public var corePreset: CorePreset = .auto
    /// Core-function globs, on top of the preset.
    public var coreFunctions: [String] = []
    /// Functions taken out of core even though a glob matches them.
    public var coreExclude: [String] = []
    /// Executable sections left out of the analysis (not decoded, not counted).
    public var excludeSections: [String] = []
    /// Let defragmentation merge leftover clusters into core while core has room.
    public var defragmentIntoCore = false
    /// Flash page size in bytes and the time to read one page, in microseconds.
    public var pageSize: Int = 2048
    public var pageReadMicroseconds: Double = 130.9
    public var storage: StorageBackend = .memory
    /// The clustering method; Figure 2 unless `ovl optimize` chose otherwise.
    public var method: ClusteringMethod = .figure2
    /// With `method = affinity`: bytes of executed code kept resident beyond core.
    public var residentBudget: Int = 0

    public init() {}

    /// Keys a configuration file may hold, by table.
    static let knownKeys: [String: [String]] = [
        "": ["gamma", "buffer_size", "buffers", "granularity", "exclude_sections", "defragment_into_core", "storage", "method", "resident_budget", "core", "flash"],
        "core": ["preset", "functions", "exclude"],
        "flash": ["page_size", "page_read_us"],
    ]

    /// Reads a configuration file. Unknown keys, wrong types and nonsensical values are
    /// errors naming the file and the key.
    public static func load(path: String) throws -> Config {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw OvlError.file(path, FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw OvlError.file(path, "is not UTF-8 text") }
        return try parse(text, path: path)
    }

    public static func parse(_ text: String, path: String) throws -> Config {
        // toml++ (inside TOMLKit) aborts on some malformed table headers: catch those first.
        if let p = TOMLGuard.check(text) { throw OvlError.file(path, "line \(p.line): \(p.message)") }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let e as TOMLParseError {
            throw OvlError.file(path, "line \(e.source.begin.line): \(e.description)")
        } catch {
            throw OvlError.file(path, "is not valid TOML")
        }
        var c = Config()
        try checkKeys(table, prefix: "", path: path)
        func number(_ key: String, in t: TOMLTable, _ prefix: String = "") throws -> Double? {
            guard let v = t[key] else { return nil }
            if let i = v.int { return Double(i) }
            if let d = v.double { return d }
            throw OvlError.file(path, "\(prefix)\(key) must be a number")
        }
        func integer(_ key: String, in t: TOMLTable, _ prefix: String = "") throws -> Int? {
            guard let v = t[key] else { return nil }
            guard let i = v.int else { throw OvlError.file(path, "\(prefix)\(key) must be a whole number") }
            return i
        }
        func string(_ key: String, in t: TOMLTable, _ prefix: String = "") throws -> String? {
            guard let v = t[key] else { return nil }
            guard let s = v.string else { throw OvlError.file(path, "\(prefix)\(key) must be a string") }
            return s
        }
        func strings(_ key: String, in t: TOMLTable, _ prefix: String = "") throws -> [String]? {
            guard let v = t[key] else { return nil }
            guard let a = v.array else { throw OvlError.file(path, "\(prefix)\(key) must be an array of strings") }
            return try a.map { e in
                guard let s = e.string else { throw OvlError.file(path, "\(prefix)\(key) must be an array of strings") }
                return s
            }
        }
        if let g = try number("gamma", in: table) { c.gamma = g }
        if let b = try integer("buffer_size", in: table) { c.bufferSize = b }
        if let b = try integer("buffers", in: table) { c.buffers = b }
        if let g = try string("granularity", in: table) {
            guard let v = Granularity(rawValue: g) else { throw OvlError.file(path, "granularity must be \"block\" or \"function\", not \"\(g)\"") }
            c.granularity = v
        }
        if let s = try strings("exclude_sections", in: table) { c.excludeSections = s }
        if let v = table["defragment_into_core"] {
            guard let b = v.bool else { throw OvlError.file(path, "defragment_into_core must be true or false") }
            c.defragmentIntoCore = b
        }
        if let s = try string("storage", in: table) {
            guard let v = StorageBackend(rawValue: s) else { throw OvlError.file(path, "storage must be \"memory\" or \"file\", not \"\(s)\"") }
            c.storage = v
        }
        if let m = try string("method", in: table) {
            guard let v = ClusteringMethod(rawValue: m) else {
                throw OvlError.file(path, "method must be one of \(ClusteringMethod.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")), not \"\(m)\"")
            }
            c.method = v
        }
        if let b = try integer("resident_budget", in: table) { c.residentBudget = b }
        if let v = table["core"] {
            guard let core = v.table else { throw OvlError.file(path, "core must be a table ([core])") }
            if let p = try string("preset", in: core, "core.") {
                guard let v = CorePreset(rawValue: p) else {
                    throw OvlError.file(path, "core.preset must be one of \(CorePreset.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")), not \"\(p)\"")
                }
                c.corePreset = v
            }
            if let f = try strings("functions", in: core, "core.") { c.coreFunctions = f }
            if let f = try strings("exclude", in: core, "core.") { c.coreExclude = f }
        }
        if let v = table["flash"] {
            guard let flash = v.table else { throw OvlError.file(path, "flash must be a table ([flash])") }
            if let p = try integer("page_size", in: flash, "flash.") { c.pageSize = p }
            if let t = try number("page_read_us", in: flash, "flash.") { c.pageReadMicroseconds = t }
        }
        try c.validate(source: path)
        return c
    }

    private static func checkKeys(_ t: TOMLTable, prefix: String, path: String) throws {
        let known = knownKeys[prefix] ?? []
        for key in t.keys where !known.contains(key) {
            let name = prefix.isEmpty ? key : "\(prefix).\(key)"
            let suggestion = known.min { editDistance($0, key) < editDistance($1, key) }.flatMap { editDistance($0, key) <= 3 ? " (did you mean '\(prefix.isEmpty ? $0 : prefix + "." + $0)'?)" : nil } ?? ""
            throw OvlError.file(path, "unknown key '\(name)'\(suggestion); known keys: \(known.map { prefix.isEmpty ? $0 : prefix + "." + $0 }.joined(separator: ", "))")
        }
        for key in ["core", "flash"] where prefix.isEmpty {
            if let sub = t[key]?.table { try checkKeys(sub, prefix: key, path: path) }
        }
    }

    /// Checks every value; `source` names where the values came from (a file, or
    /// "command line").
    public func validate(source: String) throws {
        func bad(_ m: String) -> OvlError { OvlError("\(source): \(m)") }
        guard gamma.isFinite, gamma >= 0 else { throw bad("gamma must be a percentage of 0 or more, not \(Config.format(gamma))") }
        guard gamma <= 100_000 else { throw bad("gamma \(Config.format(gamma))% is not a sensible bound (at most 100000)") }
        guard bufferSize > 0 else { throw bad("buffer size must be a positive number of bytes, not \(bufferSize)") }
        guard bufferSize <= 1 << 30 else { throw bad("buffer size \(bufferSize) is larger than 1 GiB") }
        guard buffers >= 1 && buffers <= 64 else { throw bad("buffers must be between 1 and 64, not \(buffers)") }
        guard residentBudget >= 0 else { throw bad("resident budget must be 0 or more bytes, not \(residentBudget)") }
        guard pageSize > 0 else { throw bad("flash page size must be a positive number of bytes, not \(pageSize)") }
        guard pageReadMicroseconds.isFinite, pageReadMicroseconds >= 0 else { throw bad("flash page read time must be 0 or more microseconds") }
    }

    static func format(_ d: Double) -> String {
        d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d)
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let x = Array(a), y = Array(b)
        var prev = Array(0...y.count)
        for i in 1...max(1, x.count) where !x.isEmpty {
            var cur = [i] + Array(repeating: 0, count: y.count)
            for j in 1...max(1, y.count) where !y.isEmpty {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            }
            prev = cur
        }
        return prev[y.count]
    }

    /// The configuration as TOML that `Config.parse` reads back to an equal value.
    public func toml(comment: String? = nil) -> String {
        func q(_ s: String) -> String {
            "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        func list(_ a: [String]) -> String { "[" + a.map(q).joined(separator: ", ") + "]" }
        var s = ""
        if let comment { for line in comment.split(separator: "\n", omittingEmptySubsequences: false) { s += "# \(line)\n" } }
        s += "gamma = \(Config.format(gamma))          # core may grow by this many percent\n"
        s += "buffer_size = \(bufferSize)   # code buffer, bytes\n"
        s += "buffers = \(buffers)\n"
        s += "granularity = \(q(granularity.rawValue))\n"
        s += "exclude_sections = \(list(excludeSections))\n"
        s += "defragment_into_core = \(defragmentIntoCore)\n"
        s += "storage = \(q(storage.rawValue))\n"
        s += "method = \(q(method.rawValue))   # figure2 (the paper) or affinity (ovl optimize)\n"
        s += "resident_budget = \(residentBudget)   # affinity: executed code kept resident beyond core, bytes\n\n"
        s += "[core]\npreset = \(q(corePreset.rawValue))\n"
        s += "functions = [\n" + coreFunctions.map { "  \(q($0)),\n" }.joined() + "]\n"
        s += "exclude = \(list(coreExclude))\n\n"
        s += "[flash]\npage_size = \(pageSize)\npage_read_us = \(pageReadMicroseconds)\n"
        return s
    }
}
