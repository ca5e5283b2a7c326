import MinkHTTP

/// The `access_token` query parameter (HTTP-API.md section 2): how a browser's `EventSource`,
/// which cannot send headers, presents its token on a `GET`.
///
/// A token in a URL is a secret in the one part of a request that proxies, browsers and
/// servers like to log; so it is taken only on `GET` (and `HEAD`), and everything that might
/// print a query — the server span's `url.query`, any future request line — goes through
/// ``redacting(_:)`` first. The access log never prints the path or query at all.
enum AccessToken {
    /// The parameter's name.
    static let parameter = "access_token"
    /// What a redacted token shows as.
    static let redactedValue = "REDACTED"

    /// Whether `method` may carry the token in its query (`GET`, and `HEAD`, which works wherever `GET` does).
    static func isAllowed(on method: String) -> Bool { method == "GET" || method == "HEAD" }

    /// The raw (still percent-encoded) value of the last `access_token` in a query, or `nil`.
    /// A byte scan: it runs on every request that has a query. A name is compared decoded, as
    /// every other parameter's is (`access%5Ftoken` is `access_token`).
    static func rawValue(in query: String?) -> Substring? {
        guard let query, !query.isEmpty else { return nil }
        var found: Substring?
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            guard let value = value(of: pair, matching: { $0 == "access_token" }) else { continue }
            found = value
        }
        return found
    }

    /// The value part of `pair` when its name, decoded, satisfies `matches` (the plain spelling
    /// without a decode); `nil` otherwise.
    private static func value(of pair: Substring, matching matches: (String) -> Bool) -> Substring? {
        let name = pair.prefix { $0 != "=" }
        let rest = pair.dropFirst(name.count)
        let value = rest.isEmpty ? rest : rest.dropFirst()
        if name.utf8.starts(with: "access_token".utf8), name.utf8.count == 12 { return matches("access_token") ? value : nil }
        // Only a name that could decode to something else is decoded.
        guard name.utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) else {
            return matches(String(name)) ? value : nil
        }
        guard let decoded = Router.percentDecode(name, plusIsSpace: true) else { return nil }
        return matches(decoded) ? value : nil
    }

    /// Whether the query names `access_token` at all (with or without a value).
    static func isPresent(in query: String?) -> Bool { rawValue(in: query) != nil }

    /// The decoded token of a query's `access_token` (`+` is a space, as in every query
    /// parameter), or `nil` when absent, empty or badly encoded.
    static func token(in query: String?) -> String? {
        guard let raw = rawValue(in: query), !raw.isEmpty,
            let decoded = Router.percentDecode(raw, plusIsSpace: true), !decoded.isEmpty
        else { return nil }
        return decoded
    }

    /// `query` with every `access_token` value replaced by `REDACTED`; other parameters as sent.
    /// Names are compared decoded and without regard to case (`ACCESS_TOKEN`, `access%5Ftoken`),
    /// and `;` separates parameters too: a misspelt token is still a secret in a log.
    static func redacting(_ query: String) -> String {
        guard query.utf8.contains(where: { $0 == UInt8(ascii: "a") || $0 == UInt8(ascii: "A") || $0 == UInt8(ascii: "%") }) else {
            return query
        }
        func isTokenName(_ name: String) -> Bool { name.lowercased() == "access_token" }
        func redactPairs(_ part: Substring, separator: Character) -> String {
            part.split(separator: separator, omittingEmptySubsequences: false).map { pair -> String in
                guard value(of: pair, matching: isTokenName) != nil else { return String(pair) }
                return String(pair.prefix { $0 != "=" }) + "=" + redactedValue
            }.joined(separator: String(separator))
        }
        return query.split(separator: "&", omittingEmptySubsequences: false)
            .map { redactPairs($0, separator: ";") }
            .joined(separator: "&")
    }

    /// A request target with its `access_token` redacted (see ``redacting(_:)``).
    static func redactingTarget(_ request: HTTPRequest) -> String {
        guard let query = request.query else { return request.path }
        return request.path + "?" + redacting(query)
    }
}
