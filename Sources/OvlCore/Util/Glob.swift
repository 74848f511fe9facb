/// Shell-style name patterns for core functions and sections: `*` matches any run of
/// characters, `?` one character, `[abc]` / `[a-z]` / `[!abc]` one of a set; anything
/// else matches itself. A pattern without wildcards is an exact name.
public enum Glob {
    public static func matches(_ pattern: String, _ name: String) -> Bool {
        Compiled(pattern).matches(name)
    }

    /// A pattern taken apart once, for matching against many names.
    public struct Compiled: Sendable {
        let bytes: [UInt8]
        public init(_ pattern: String) { bytes = Array(pattern.utf8) }

        public func matches(_ name: String) -> Bool {
            var name = name
            return name.withUTF8 { s in bytes.withUnsafeBufferPointer { p in Glob.match(p, 0, s, 0) } }
        }
    }

    public static func hasWildcards(_ pattern: String) -> Bool {
        pattern.contains { $0 == "*" || $0 == "?" || $0 == "[" }
    }

    static func match(_ p: UnsafeBufferPointer<UInt8>, _ pi0: Int, _ s: UnsafeBufferPointer<UInt8>, _ si0: Int) -> Bool {
        var pi = pi0, si = si0
        var starP = -1, starS = -1
        while si < s.count {
            if pi < p.count {
                let c = p[pi]
                if c == UInt8(ascii: "*") {
                    starP = pi; starS = si; pi += 1; continue
                }
                if c == UInt8(ascii: "?") { pi += 1; si += 1; continue }
                if c == UInt8(ascii: "["), let (ok, next) = matchClass(p, pi, s[si]) {
                    if ok { pi = next; si += 1; continue }
                } else if c == s[si] { pi += 1; si += 1; continue }
            }
            if starP >= 0 {
                pi = starP + 1; starS += 1; si = starS; continue
            }
            return false
        }
        while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }

    /// Matches `ch` against the class starting at `p[start] == '['`. Returns nil when the
    /// class is not closed (then `[` is an ordinary character).
    private static func matchClass(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ ch: UInt8) -> (Bool, Int)? {
        var i = start + 1
        var negate = false
        if i < p.count && (p[i] == UInt8(ascii: "!") || p[i] == UInt8(ascii: "^")) { negate = true; i += 1 }
        var matched = false
        var first = true
        while i < p.count {
            let c = p[i]
            if c == UInt8(ascii: "]") && !first { return (matched != negate, i + 1) }
            first = false
            if i + 2 < p.count && p[i + 1] == UInt8(ascii: "-") && p[i + 2] != UInt8(ascii: "]") {
                if ch >= c && ch <= p[i + 2] { matched = true }
                i += 3
            } else {
                if ch == c { matched = true }
                i += 1
            }
        }
        return nil
    }
}
