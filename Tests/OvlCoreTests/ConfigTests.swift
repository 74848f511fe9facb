import Foundation
import Testing
@testable import OvlCore

@Suite struct ConfigTests {
    /// Headers that toml++ asserts on are reported as errors naming the file and line.
    @Test func malformedTableHeadersAreErrors() {
        let cases: [(String, Int)] = [
            ("[ = [", 1), ("[\n", 1), ("[", 1), ("gamma = 4\n\n[[ =\n", 3), ("[\r\n", 1),
            ("[core]\nfunctions = []\n[\t#\n", 3), ("x = \"\"\"\nmulti\n\"\"\"\n[ ,\n", 4),
        ]
        for (text, line) in cases {
            #expect(throws: OvlError.file("c.toml", "line \(line): " + (TOMLGuard.check(text)?.message ?? "?"))) {
                try Config.parse(text, path: "c.toml")
            }
            #expect(TOMLGuard.check(text)?.line == line, "\(text.debugDescription)")
        }
        #expect(TOMLGuard.check("gamma = 4\0")?.message.contains("NUL") == true)
        // Array elements toml++'s parse_value() asserts on.
        for (text, line) in [("a = [}]", 1), ("a = [1,\n  # c\n  }\n]", 3), ("a = [\u{2028}1]", 1), ("a = [[1], \u{85}]", 1), ("[core]\nfunctions = [{}, }]", 2)] {
            #expect(TOMLGuard.check(text)?.line == line, "\(text.debugDescription)")
            #expect(throws: OvlError.self) { try Config.parse(text, path: "c.toml") }
        }
    }

    /// Lines that look like bad headers but sit inside strings or arrays are left alone,
    /// and every valid configuration still parses.
    @Test func validDocumentsPassTheGuard() throws {
        let valid = [
            Config().toml(comment: "a [ = [ comment"),
            "[core]\nfunctions = [\n  \"a\",\n  # [ = [\n  \"b\",\n]\n",
            "[core]\nfunctions = [\"\"\"\n[ = [\n\"\"\"]\n",
            "[core]\nfunctions = ['''\n[\n''']\n",
            "[core]\nfunctions = [\"a\\\"[\"]\n",
            "[core]\nfunctions = [ # first\n  \"a\", # }\n  \"}\",\n]\n",
            "[ \"core\" ]\npreset = \"none\"\n",
            "[core] # note\nexclude = ['''x''''']\n[flash]\npage_size = 4096\n",
            "\u{feff}gamma = 2\r\n[core]\r\npreset = \"static\"\r\n",
        ]
        for text in valid {
            #expect(TOMLGuard.check(text) == nil, "\(text.debugDescription)")
            #expect(throws: Never.self) { try Config.parse(text, path: "c.toml") }
        }
        // Valid TOML that is not a valid configuration: toml++ parses it, ovl's own checks refuse it.
        let nested = "[core]\nfunctions = [\n[\n\"x\"]]\n"
        #expect(TOMLGuard.check(nested) == nil)
        #expect(throws: OvlError.file("c.toml", "core.functions must be an array of strings")) { try Config.parse(nested, path: "c.toml") }
    }
}
