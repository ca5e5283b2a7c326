import Mink

/// Translations of SQL `LIKE` patterns, with the meaning `Query` gives them: `%` any run, `_` one
/// character, `\` makes the next character literal (a trailing `\` is itself literal); always
/// case-sensitive.
public enum SQLPattern {
    /// One element of a `LIKE` pattern (the core's: one reading of a pattern everywhere).
    public typealias Token = LikePattern.Token

    /// Splits a `LIKE` pattern into tokens, exactly as `Query`'s reference evaluation reads it.
    public static func tokens(ofLike pattern: String) -> [Token] {
        LikePattern(pattern).tokens
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
