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
    /// The token's request budget (`rateLimit` in its config), or `nil` for no limit.
    var rateLimiter: RateLimiter?
    /// The SHA-256 of the token presented (`nil` with auth disabled): what a reload is checked
    /// against (``Authenticator/stillGrants(_:tenant:role:)``).
    var credential: String? = nil

    /// Everyone, when authentication is disabled: every role, every tenant.
    static let anonymous = Principal(name: "-", tenant: nil, roles: Set(MinkdConfiguration.Token.Role.allCases))

    static func == (lhs: Principal, rhs: Principal) -> Bool {
        lhs.name == rhs.name && lhs.tenant == rhs.tenant && lhs.roles == rhs.roles && lhs.rateLimiter === rhs.rateLimiter
            && lhs.credential == rhs.credential
    }
}

/// Checks bearer tokens against the configured SHA-256 hashes (HTTP-API.md section 2).
///
/// The token list can be replaced while requests run (SIGHUP): each request sees either the old
/// list or the new one, never a mix. A presented token is hashed and compared with *every*
/// configured hash in constant time, so timing tells nothing about which hash nearly matched.
final class Authenticator: Sendable {
    /// The token list and the rate limiter of each token that has a `rateLimit` (by name),
    /// replaced together: a request reads both in one short critical section (the list was
    /// read under this lock before limits existed; the limiters themselves take no lock).
    private struct State {
        var auth: MinkdConfiguration.Auth
        var limiters: [String: RateLimiter]
    }

    private let state: Mutex<State>
    /// Incremented by every ``replaceTokens(_:)``: a long request (an event stream) checks its
    /// principal again only when this moved.
    private let reloads = Atomic<Int>(0)

    /// How many times the token list was replaced.
    var generation: Int { reloads.load(ordering: .acquiring) }

    init(_ auth: MinkdConfiguration.Auth) {
        self.state = Mutex(State(auth: auth, limiters: Self.limiters(for: auth.tokens, keeping: [:])))
    }

    /// Whether tokens are required.
    var isEnabled: Bool { state.withLock { $0.auth.enabled } }

    /// Replaces the token list; requests already authenticated keep their principal. A token
    /// whose name and limit are unchanged keeps its bucket, so a reload does not refill it.
    func replaceTokens(_ tokens: [MinkdConfiguration.Token]) {
        state.withLock { s in
            s.auth.tokens = tokens
            s.limiters = Self.limiters(for: tokens, keeping: s.limiters)
        }
        reloads.add(1, ordering: .releasing)
    }

    /// Whether the current token list still lets `principal` do `role` in `tenant`: its token
    /// (by hash — a rotated token with the same name does not count) is still listed, bound to
    /// that tenant or `*`, with the role. Always true with auth disabled.
    func stillGrants(_ principal: Principal, tenant: String, role: MinkdConfiguration.Token.Role) -> Bool {
        let auth = state.withLock { $0.auth }
        guard auth.enabled, let credential = principal.credential else { return true }
        return auth.tokens.contains { t in
            t.sha256 == credential && (t.isWildcard || t.tenant == tenant) && t.roles.contains(role)
        }
    }

    private static func limiters(for tokens: [MinkdConfiguration.Token], keeping old: [String: RateLimiter]) -> [String: RateLimiter] {
        var result: [String: RateLimiter] = [:]
        for token in tokens {
            guard let limit = token.rateLimit else { continue }
            if let kept = old[token.name], kept.limit == limit {
                result[token.name] = kept
            } else {
                result[token.name] = RateLimiter(limit)
            }
        }
        return result
    }

    /// The number of configured tokens.
    var tokenCount: Int { state.withLock { $0.auth.tokens.count } }

    /// The principal of a request: its `Authorization: Bearer` token, or on a `GET`/`HEAD` without
    /// that header its `access_token` query parameter (section 2; the header wins when both are sent).
    /// - Returns: ``Principal/anonymous`` when auth is disabled, `nil` for a missing, malformed or
    ///   unknown token.
    func principal(for request: HTTPRequest) -> Principal? {
        let (auth, limiters) = state.withLock { ($0.auth, $0.limiters) }
        guard auth.enabled else { return .anonymous }
        let token: String
        if let header = request.headers["Authorization"] {
            guard let bearer = Self.bearerToken(header) else { return nil }
            token = bearer
        } else if AccessToken.isAllowed(on: request.method), let fromQuery = AccessToken.token(in: request.query) {
            token = fromQuery
        } else {
            return nil
        }
        guard let match = auth.token(matching: token) else { return nil }
        let limiter = match.rateLimit == nil ? nil : limiters[match.name]
        return Principal(
            name: match.name, tenant: match.isWildcard ? nil : match.tenant, roles: match.roles, rateLimiter: limiter,
            credential: match.sha256)
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
