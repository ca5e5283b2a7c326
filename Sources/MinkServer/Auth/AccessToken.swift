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
    /// A byte scan: it runs on every request that has a query.
    static func rawValue(in query: String?) -> Substring? {
        guard let query, !query.isEmpty else { return nil }
        var found: Substring?
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            guard pair.utf8.starts(with: "access_token".utf8) else { continue }
            let rest = pair.dropFirst(12)
            if rest.isEmpty {
                found = rest
            } else if rest.utf8.first == UInt8(ascii: "=") {
                found = rest.dropFirst()
            }
        }
        return found
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
    static func redacting(_ query: String) -> String {
        guard query.utf8.contains(UInt8(ascii: "a")), isPresent(in: query) else { return query }
        return query.split(separator: "&", omittingEmptySubsequences: false).map { pair -> String in
            guard pair.utf8.starts(with: "access_token".utf8) else { return String(pair) }
            let rest = pair.dropFirst(12)
            guard rest.isEmpty || rest.utf8.first == UInt8(ascii: "=") else { return String(pair) }
            return "access_token=\(redactedValue)"
        }.joined(separator: "&")
    }

    /// A request target with its `access_token` redacted (see ``redacting(_:)``).
    static func redactingTarget(_ request: HTTPRequest) -> String {
        guard let query = request.query else { return request.path }
        return request.path + "?" + redacting(query)
    }
}
