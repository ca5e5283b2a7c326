import Mink

/// A failure reported by libpq or the server. The adapter classifies it by its SQLSTATE (never by
/// its message) and maps it to a ``Mink/MinkError`` whose `underlying` is this error, see
/// ``minkError`` — as postgres-nio's `PSQLError` keeps the server's fields.
///
/// Internal code inspects ``sqlState`` (e.g. `23505` unique violation) where a failure has a
/// meaning of its own; everything else leaves the adapter through ``minkError``.
public struct PostgresError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The five-character SQLSTATE (`PQresultErrorField(res, PG_DIAG_SQLSTATE)`), or `nil` when
    /// libpq failed without a server error (connection refused, connection lost).
    public var sqlState: String?
    /// The server's or libpq's primary message (never the statement text).
    public var message: String
    /// The constraint concerned (`PG_DIAG_CONSTRAINT_NAME`, for constraint violations).
    public var constraint: String?
    /// Whether the connection itself failed (it is closed and reopened on next use).
    public var connectionLost: Bool
    /// Whether the server did not answer within the storage timeout (the connection was closed:
    /// whether the statement ran is unknown).
    public var timedOut: Bool

    /// Creates an error.
    public init(sqlState: String?, message: String, constraint: String? = nil, connectionLost: Bool = false, timedOut: Bool = false) {
        self.sqlState = sqlState
        self.message = message
        self.constraint = constraint
        self.connectionLost = connectionLost
        self.timedOut = timedOut
    }

    /// `SQLSTATE: message`; a failure the server did not answer (a lost connection, a timeout,
    /// libpq's own) has no SQLSTATE and says so in words.
    public var description: String {
        if let sqlState { return "\(sqlState): \(message)" }
        let kind = timedOut ? "timed out" : connectionLost ? "connection lost" : "client error"
        return "\(kind) (no SQLSTATE): \(message)"
    }

    /// The SQLSTATE's class: its first two characters (`23` integrity constraint violation,
    /// `08` connection exception, …).
    public var sqlStateClass: Substring? { sqlState?.prefix(2) }

    /// Unique violation (`23505`).
    public var isUniqueViolation: Bool { sqlState == "23505" }
    /// Serialization failure (`40001`): a concurrent transaction won; retrying may succeed.
    public var isSerializationFailure: Bool { sqlState == "40001" }
    /// Deadlock detected (`40P01`): the server aborted this transaction; retrying may succeed.
    public var isDeadlock: Bool { sqlState == "40P01" }
    /// The connection failed: libpq lost it, or the server reported a connection exception
    /// (class `08`).
    public var isConnectionException: Bool { connectionLost || sqlStateClass == "08" }

    /// Whether the failure says a tenant's schema or database is missing (`3F000` invalid schema,
    /// `42P01` undefined table, `3D000` invalid database).
    public var isMissingStorage: Bool { sqlState == "3F000" || sqlState == "42P01" || sqlState == "3D000" }

    /// A write refused because the transaction is read-only (`25006`): a hot standby, or
    /// `default_transaction_read_only` set on the server, database or role.
    public var isReadOnly: Bool { sqlState == "25006" }

    /// Whether retrying later may succeed: the connection failed (or libpq failed without a server
    /// error), the server is shutting down or starting (`57P01`–`57P03`), out of resources (class
    /// `53`), a serialization failure or deadlock, a lock or statement timeout (`55P03`, `57014`),
    /// a read-only transaction (`25006`: a standby may be promoted, a setting reset).
    public var isTransient: Bool {
        guard let s = sqlState else { return true }
        return isConnectionException || isSerializationFailure || isDeadlock || sqlStateClass == "53" || s.hasPrefix("57P")
            || s == "55P03" || s == "57014" || isReadOnly
    }

    /// The error as callers of the adapter see it, with this error as its `underlying`: transient
    /// failures become `.unavailable`, invalid text (`22021`, `22P05`, `22P02`) `.validationFailed`,
    /// anything else `.internalError`.
    public var minkError: MinkError {
        if isReadOnly {
            return MinkError(
                .unavailable, "PostgreSQL refuses writes (a read-only transaction: a standby, or default_transaction_read_only): \(message)",
                isTransient: true, underlying: self
            )
        }
        if isTransient {
            return MinkError(.unavailable, "PostgreSQL is unavailable: \(message)", isTransient: true, underlying: self)
        }
        if let s = sqlState, s == "22021" || s == "22P05" || s == "22P02" {
            return MinkError(.validationFailed, "PostgreSQL rejected a value: \(message)", isTransient: false, underlying: self)
        }
        return MinkError(.internalError, "PostgreSQL error \(sqlState ?? ""): \(message)", isTransient: false, underlying: self)
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

extension String {
    /// Whether the text holds U+0000, which PostgreSQL text cannot store.
    var containsNUL: Bool { utf8.contains(0) }
}
