/// A configuration problem, reported as one line naming the key:
/// `config: auth.tokens[1].roles: unknown role "rw"`.
///
/// `keyPath` is a path into the YAML file (`limits.maxBodyBytes`,
/// `auth.tokens[1].roles`), an environment variable (`MINKD_LISTEN`), a flag
/// (`--listen`) or the file itself.
public struct ConfigError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Where the problem is.
    public var keyPath: String
    /// What is wrong.
    public var message: String

    /// Creates an error.
    public init(keyPath: String, message: String) {
        self.keyPath = keyPath
        self.message = message
    }

    /// `config: <keyPath>: <message>`, on one line.
    public var description: String {
        let line = "config: \(keyPath): \(message)"
        return line.contains("\n") ? line.split(whereSeparator: \.isNewline).joined(separator: " ") : line
    }
}
