/// Every error the engine reports to a user: one sentence naming the file (or the
/// parameter) and the problem. The CLI prints `description` and exits non-zero.
public struct OvlError: Error, CustomStringConvertible, Equatable {
    public let description: String

    public init(_ message: String) { self.description = message }

    /// An error about a file: "`path`: message".
    public static func file(_ path: String, _ message: String) -> OvlError {
        OvlError("\(path): \(message)")
    }
}
