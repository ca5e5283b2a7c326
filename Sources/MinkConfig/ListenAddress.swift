import Foundation

/// A `HOST:PORT` listen address: `127.0.0.1:6465`, `[::1]:6465`, `0.0.0.0:80`,
/// `localhost:0` (port 0 picks a free port).
public struct ListenAddress: Hashable, Sendable, CustomStringConvertible {
    /// The host: an IPv4 address, an IPv6 address (without brackets) or a name.
    public var host: String
    /// The TCP port, 0–65535.
    public var port: Int

    /// Creates an address.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT` or `[IPv6]:PORT`.
    /// - Throws: `ConfigError` at `keyPath` for anything else.
    public init(parsing text: String, keyPath: String = "listen") throws {
        func fail() -> ConfigError {
            ConfigError(keyPath: keyPath, message: "invalid address \"\(text)\" (expected HOST:PORT, e.g. 127.0.0.1:6465 or [::1]:6465)")
        }
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw fail() }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw fail() }
            portText = rest.dropFirst()
            guard host.contains(":"), host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else { throw fail() }
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw fail() }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            guard !host.isEmpty, !host.contains(":"),
                  host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") })
            else { throw fail() }
        }
        guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
              let port = Int(portText), port <= 65535
        else { throw fail() }
        self.init(host: String(host), port: port)
    }

    /// `HOST:PORT`, with brackets around an IPv6 host.
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// Whether the host is a loopback address.
    public var isLoopback: Bool { Self.isLoopback(host: host) }

    /// Whether `host` is a loopback address: `localhost`, anything in
    /// `127.0.0.0/8`, or `::1` (bracketed or not, in any spelling of it).
    public static func isLoopback(host: String) -> Bool {
        var host = host.lowercased()
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host == "localhost" || host.hasSuffix(".localhost") { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        if octets.count == 4, octets.allSatisfy({ UInt8($0) != nil }) { return octets[0] == "127" }
        if host.hasPrefix("::ffff:127.") { return true }
        if host.contains(":") {
            // ::1 in any spelling: every group zero except a final 1.
            let parts = host.components(separatedBy: "::")
            guard parts.count <= 2, !host.hasSuffix(":") else { return false }
            let groups = host.split(separator: ":", omittingEmptySubsequences: true)
            guard parts.count == 2 || groups.count == 8 else { return false }
            guard let last = groups.last, UInt16(last, radix: 16) == 1 else { return false }
            return groups.dropLast().allSatisfy { UInt16($0, radix: 16) == 0 }
        }
        return false
    }
}
