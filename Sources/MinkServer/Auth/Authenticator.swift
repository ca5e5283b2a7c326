import MinkConfig
import MinkHTTP
import Synchronization

/// Who a request comes from: the token it presented (or anyone, with auth disabled).
struct Principal: Sendable, Equatable {
    /// The token's name from the config, for logs (never the token or its hash).
    var name: String
    /// The tenant the token is bound to, or `nil` for a `*` token.
    var tenant: String?
    /// The roles granted.
    var roles: Set<MinkdConfiguration.Token.Role>

    /// Everyone, when authentication is disabled: every role, every tenant.
    static let anonymous = Principal(name: "-", tenant: nil, roles: Set(MinkdConfiguration.Token.Role.allCases))
}

/// Checks bearer tokens against the configured SHA-256 hashes (HTTP-API.md section 2).
///
/// The token list can be replaced while requests run (SIGHUP): each request sees either the old
/// list or the new one, never a mix. A presented token is hashed and compared with *every*
/// configured hash in constant time, so timing tells nothing about which hash nearly matched.
final class Authenticator: Sendable {
    private let auth: Mutex<MinkdConfiguration.Auth>

    init(_ auth: MinkdConfiguration.Auth) { self.auth = Mutex(auth) }

    /// Whether tokens are required.
    var isEnabled: Bool { auth.withLock { $0.enabled } }

    /// Replaces the token list; requests already authenticated keep their principal.
    func replaceTokens(_ tokens: [MinkdConfiguration.Token]) {
        auth.withLock { $0.tokens = tokens }
    }

    /// The number of configured tokens.
    var tokenCount: Int { auth.withLock { $0.tokens.count } }

    /// The principal of a request.
    /// - Returns: ``Principal/anonymous`` when auth is disabled, `nil` for a missing, malformed or
    ///   unknown token.
    func principal(for request: HTTPRequest) -> Principal? {
        let auth = self.auth.withLock { $0 }
        guard auth.enabled else { return .anonymous }
        guard let header = request.headers["Authorization"], let token = Self.bearerToken(header) else { return nil }
        guard let match = auth.token(matching: token) else { return nil }
        return Principal(name: match.name, tenant: match.isWildcard ? nil : match.tenant, roles: match.roles)
    }

    /// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive, RFC 9110
    /// section 11.1), or `nil`.
    static func bearerToken(_ value: String) -> String? {
        let trimmed = trim(Substring(value))
        guard trimmed.utf8.count > 7, trimmed.prefix(7).lowercased() == "bearer " else { return nil }
        let token = trim(trimmed.dropFirst(7))
        return token.isEmpty || token.contains(" ") ? nil : String(token)
    }
}

/// Without leading and trailing spaces and tabs.
private func trim(_ s: Substring) -> Substring {
    guard let start = s.firstIndex(where: { $0 != " " && $0 != "\t" }) else { return s[s.endIndex...] }
    let end = s.lastIndex(where: { $0 != " " && $0 != "\t" })!
    return s[start...end]
}
