import Mink

/// A failure reported by libpq or the server, before it is mapped to a ``MinkError``.
///
/// Internal code inspects ``sqlState`` (e.g. `23505` unique violation) where a failure has a
/// meaning of its own; everything else leaves the adapter through ``minkError``.
struct PostgresError: Error, Sendable, CustomStringConvertible {
    /// The five-character SQLSTATE, or `nil` when libpq failed without a server error
    /// (connection refused, connection lost).
    var sqlState: String?
    /// The server's or libpq's primary message (never the statement text).
    var message: String
    /// The constraint concerned (unique violations).
    var constraint: String?
    /// Whether the connection itself failed (it is closed and reopened on next use).
    var connectionLost: Bool

    init(sqlState: String?, message: String, constraint: String? = nil, connectionLost: Bool = false) {
        self.sqlState = sqlState
        self.message = message
        self.constraint = constraint
        self.connectionLost = connectionLost
    }

    var description: String { "\(sqlState ?? "-----"): \(message)" }

    /// Unique violation.
    var isUniqueViolation: Bool { sqlState == "23505" }

    /// Whether the failure says a tenant's schema or database is missing (`3F000` invalid schema,
    /// `42P01` undefined table, `3D000` invalid database).
    var isMissingStorage: Bool { sqlState == "3F000" || sqlState == "42P01" || sqlState == "3D000" }

    /// Whether retrying later may succeed: the connection failed, the server is shutting down or
    /// starting (`57P01`–`57P03`), out of resources (`53xxx`), a serialization failure or deadlock
    /// (`40001`, `40P01`), a lock or statement timeout (`55P03`, `57014`).
    var isTransient: Bool {
        if connectionLost { return true }
        guard let s = sqlState else { return true }
        return s.hasPrefix("08") || s.hasPrefix("53") || s.hasPrefix("57P") || s == "40001" || s == "40P01"
            || s == "55P03" || s == "57014"
    }

    /// The error as callers of the adapter see it: transient failures become `.unavailable`,
    /// invalid text `.validationFailed`, anything else `.internalError`.
    var minkError: MinkError {
        if isTransient {
            return MinkError(.unavailable, "PostgreSQL is unavailable: \(message)", isTransient: true)
        }
        if let s = sqlState, s == "22021" || s == "22P05" || s == "22P02" {
            return MinkError(.validationFailed, "PostgreSQL rejected a value: \(message)", isTransient: false)
        }
        return MinkError(.internalError, "PostgreSQL error \(sqlState ?? ""): \(message)", isTransient: false)
    }
}

extension Error {
    /// This error as a ``MinkError``: ``PostgresError``s are mapped, `MinkError`s pass through,
    /// cancellation becomes `.cancelled`, anything else (thrown by a hook) is rethrown unchanged.
    func mappedForMink() -> any Error {
        if let e = self as? PostgresError { return e.minkError }
        return self
    }
}
