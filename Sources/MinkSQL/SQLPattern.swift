/// Translations of SQL `LIKE` patterns, with the meaning `Query` gives them: `%` any run, `_` one
/// character, `\` makes the next character literal (a trailing `\` is itself literal); always
/// case-sensitive.
public enum SQLPattern {
    /// One element of a `LIKE` pattern.
    public enum Token: Sendable, Hashable {
        /// `%`: any run of characters, possibly empty.
        case anyRun
        /// `_`: exactly one character.
        case one
        /// A character matched as itself.
        case literal(Character)
    }

    /// Splits a `LIKE` pattern into tokens, as `Query`'s reference evaluation reads it.
    public static func tokens(ofLike pattern: String) -> [Token] {
        var out: [Token] = []
        var escaping = false
        for c in pattern {
            if escaping { out.append(.literal(c)); escaping = false; continue }
            switch c {
            case "\\": escaping = true
            case "%": out.append(.anyRun)
            case "_": out.append(.one)
            default: out.append(.literal(c))
            }
        }
        if escaping { out.append(.literal("\\")) }
        return out
    }

    /// `text` as a `LIKE` pattern that matches exactly `text`: `\`, `%` and `_` are escaped with
    /// `\` (use with `ESCAPE '\'`). For literal prefix filters, append `%` to the result.
    public static func escapeLike(_ text: String) -> String {
        var out = ""
        for c in text {
            if c == "\\" || c == "%" || c == "_" { out.append("\\") }
            out.append(c)
        }
        return out
    }

    /// The SQLite `GLOB` pattern (case-sensitive) equivalent to a `LIKE` pattern: `%` → `*`,
    /// `_` → `?`, and the glob metacharacters `*`, `?`, `[` made literal as `[*]`, `[?]`, `[[]`.
    public static func glob(fromLike pattern: String) -> String {
        var out = ""
        for token in tokens(ofLike: pattern) {
            switch token {
            case .anyRun: out += "*"
            case .one: out += "?"
            case .literal(let c):
                if c == "*" || c == "?" || c == "[" { out += "[\(c)]" } else { out.append(c) }
            }
        }
        return out
    }

    /// The pattern rewritten for PostgreSQL's `LIKE … ESCAPE '\'`: every literal `\`, `%` and `_`
    /// escaped and a trailing lone `\` made literal (PostgreSQL rejects a pattern ending in the
    /// escape character).
    public static func postgresLike(fromLike pattern: String) -> String {
        var out = ""
        for token in tokens(ofLike: pattern) {
            switch token {
            case .anyRun: out += "%"
            case .one: out += "_"
            case .literal(let c): out += escapeLike(String(c))
            }
        }
        return out
    }
}
