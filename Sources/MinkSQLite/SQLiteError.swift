import CSQLite
import Mink

/// A failed SQLite call, with its (extended) result code. Mapped to `MinkError` before it leaves
/// the adapter, see ``SQLiteError/minkError``.
struct SQLiteError: Error, CustomStringConvertible {
    /// The extended result code (`sqlite3_extended_errcode`).
    let code: Int32
    /// SQLite's message (never contains bound values).
    let message: String

    /// The primary result code.
    var primaryCode: Int32 { code & 0xFF }

    var isBusy: Bool { primaryCode == SQLITE_BUSY || primaryCode == SQLITE_LOCKED }
    var isConstraint: Bool { primaryCode == SQLITE_CONSTRAINT }

    var description: String { "SQLite error \(code): \(message)" }

    /// The error as callers see it: busy/locked is transient `.unavailable`; malformed JSON in a
    /// stored document is `.serializationFailed` (as the in-memory adapter reports it); anything
    /// else is `.internalError`.
    var minkError: MinkError {
        if isBusy { return MinkError(.unavailable, "the SQLite database is busy (\(message)); retry later", isTransient: true) }
        if message.contains("malformed JSON") {
            return MinkError(.serializationFailed, "a stored read-model document is not valid JSON")
        }
        if primaryCode == SQLITE_FULL || primaryCode == SQLITE_IOERR || primaryCode == SQLITE_CANTOPEN {
            return MinkError(.unavailable, "SQLite storage failed: \(message)", isTransient: true)
        }
        return MinkError(.internalError, "SQLite storage failed: \(message)")
    }
}

extension Error {
    /// This error as a `MinkError` (SQLite errors mapped, others wrapped as internal errors).
    var asMinkError: any Error {
        if let e = self as? SQLiteError { return e.minkError }
        return self
    }
}
