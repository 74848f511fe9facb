/// A check of configuration text before it reaches TOMLKit.
///
/// TOMLKit bundles the C++ parser toml++, which reports almost every malformed document
/// as an error but *asserts* (aborting the process) when a table header's `[` or `[[` is
/// followed by something that cannot start a key — `[ = [`, or `[` and a line break —
/// and when an array element starts with `}` or a non-ASCII line break. In
/// a build without assertions the same spot is undefined behaviour. A dependency's
/// compiler flags cannot be changed from this package, so ovl finds those headers itself
/// and reports them as ordinary errors; everything else is still left to toml++.
///
/// The scan follows TOML's structure far enough to know which lines start a statement of
/// the document (and so may be table headers): it skips comments, quoted keys, and values
/// including strings of all four kinds and arrays and inline tables over several lines.
/// It never rejects a valid document: it only complains about a header or array element
/// that cannot be valid TOML, and about NUL bytes (which toml++ would take for the end of
/// the text).
enum TOMLGuard {
    struct Problem: Equatable {
        let line: Int
        let message: String
    }

    static func check(_ text: String) -> Problem? {
        var s = Scanner(Array(text.utf8))
        return s.run()
    }

    private struct Scanner {
        let b: [UInt8]
        var i = 0
        var line = 1

        init(_ bytes: [UInt8]) { b = bytes }

        var atEnd: Bool { i >= b.count }
        func peek(_ k: Int = 0) -> UInt8? { i + k < b.count ? b[i + k] : nil }

        static func isKeyStart(_ c: UInt8) -> Bool {
            (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
                || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
                || c == UInt8(ascii: "\"") || c == UInt8(ascii: "'")
        }

        mutating func skipBlanks() {
            while let c = peek(), c == 0x20 || c == 0x09 { i += 1 }
        }

        /// Moves past the next line break (or to the end).
        mutating func skipLine() {
            while let c = peek() {
                i += 1
                if c == 0x0a { line += 1; return }
            }
        }

        /// Skips a string starting at `i` (any of TOML's four kinds). Single-line strings
        /// stop at a line break, which is left for the caller.
        mutating func skipString() {
            let q = b[i]
            let multi = peek(1) == q && peek(2) == q
            i += multi ? 3 : 1
            while let c = peek() {
                if c == UInt8(ascii: "\\") && q == UInt8(ascii: "\"") { i += 2; if peek(-1) == 0x0a { line += 1 }; continue }
                if c == 0x0a {
                    if !multi { return }
                    line += 1
                }
                if c == q && (!multi || (peek(1) == q && peek(2) == q)) {
                    i += multi ? 3 : 1
                    // A closing delimiter may be followed by up to two quotes of the content.
                    if multi { var extra = 0; while extra < 2, peek() == q { i += 1; extra += 1 } }
                    return
                }
                i += 1
            }
        }

        /// Whether the text at `i` is a character toml++ takes for the end of a value
        /// where an array element must start: `}` and the non-ASCII line breaks (U+0085,
        /// U+2028, U+2029), which its array loop does not skip (its parse_value() asserts).
        func valueTerminatorAhead() -> String? {
            guard let c = peek() else { return nil }
            if c == UInt8(ascii: "}") { return "'}'" }
            if c == 0xc2 && peek(1) == 0x85 { return "U+0085" }
            if c == 0xe2 && peek(1) == 0x80, let d = peek(2), d == 0xa8 || d == 0xa9 { return d == 0xa8 ? "U+2028" : "U+2029" }
            return nil
        }

        /// Skips a value: a string, an array or inline table (over several lines), or a
        /// bare scalar up to the end of its line. Returns a problem toml++ would assert on.
        mutating func skipValue() -> Problem? {
            skipBlanks()
            guard let c = peek() else { return nil }
            if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") { skipString(); return nil }
            guard c == UInt8(ascii: "[") || c == UInt8(ascii: "{") else {
                while let d = peek(), d != 0x0a, d != UInt8(ascii: "#") { i += 1 }
                return nil
            }
            var open: [UInt8] = []
            // In an array, right after '[' or ',': where an element starts.
            var elementStart = false
            while let d = peek() {
                if elementStart {
                    switch d {
                    case 0x20, 0x09, 0x0d: i += 1; continue
                    case 0x0a: line += 1; i += 1; continue
                    case UInt8(ascii: "#"): while let e = peek(), e != 0x0a { i += 1 }; continue
                    default:
                        elementStart = false
                        if let t = valueTerminatorAhead() {
                            return Problem(line: line, message: "an array holds \(t) where a value should be")
                        }
                    }
                }
                switch d {
                case UInt8(ascii: "["), UInt8(ascii: "{"):
                    open.append(d); i += 1
                    elementStart = d == UInt8(ascii: "[")
                case UInt8(ascii: "]"), UInt8(ascii: "}"):
                    open.removeLast(); i += 1
                    if open.isEmpty { return nil }
                case UInt8(ascii: ","):
                    i += 1
                    elementStart = open.last == UInt8(ascii: "[")
                case UInt8(ascii: "\""), UInt8(ascii: "'"): skipString()
                case UInt8(ascii: "#"): while let e = peek(), e != 0x0a { i += 1 }
                case 0x0a: line += 1; i += 1
                default: i += 1
                }
            }
            return nil
        }

        mutating func run() -> Problem? {
            if let z = b.firstIndex(of: 0) {
                return Problem(line: 1 + b[..<z].reduce(0) { $0 + ($1 == 0x0a ? 1 : 0) }, message: "holds a NUL byte; a configuration is text")
            }
            if b.starts(with: [0xef, 0xbb, 0xbf]) { i = 3 }
            while !atEnd {
                skipBlanks()
                guard let c = peek() else { break }
                switch c {
                case 0x0a, 0x0d, UInt8(ascii: "#"):
                    skipLine()
                case UInt8(ascii: "["):
                    i += 1
                    if peek() == UInt8(ascii: "[") { i += 1 }
                    skipBlanks()
                    if let k = peek(), Scanner.isKeyStart(k) || k == UInt8(ascii: "]") {
                        skipLine()  // the rest is toml++'s to judge
                    } else {
                        let saw = peek().map { $0 == 0x0a || $0 == 0x0d ? "the end of the line" : "'\(String(decoding: [$0], as: UTF8.self))'" } ?? "the end of the file"
                        return Problem(line: line, message: "a table header needs a name after '[', saw \(saw)")
                    }
                default:
                    // A key-value pair: the key (bare, quoted, dotted), '=', the value.
                    while let d = peek(), d != 0x0a, d != UInt8(ascii: "=") {
                        if d == UInt8(ascii: "\"") || d == UInt8(ascii: "'") { skipString() } else { i += 1 }
                    }
                    if peek() == UInt8(ascii: "=") {
                        i += 1
                        if let p = skipValue() { return p }
                    }
                    skipLine()
                }
            }
            return nil
        }
    }
}
