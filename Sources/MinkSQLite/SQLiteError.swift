import CSQLite
import Mink

/// A failed SQLite call, with its result codes. The adapter classifies it by code (never by its
/// message) and maps it to a ``Mink/MinkError`` whose `underlying` is this error, see
/// ``minkError``.
public struct SQLiteError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The primary result code (`SQLITE_BUSY`, `SQLITE_CONSTRAINT`, …): the low byte of
    /// ``extendedCode``.
    public let code: Int32
    /// The extended result code (`sqlite3_extended_errcode`; the connections are opened with
    /// `SQLITE_OPEN_EXRESCODE`), e.g. `SQLITE_CONSTRAINT_UNIQUE`.
    public let extendedCode: Int32
    /// SQLite's message (never contains bound values).
    public let message: String

    /// Creates an error from an extended (or primary) result code.
    public init(extendedCode: Int32, message: String) {
        self.code = extendedCode & 0xFF
        self.extendedCode = extendedCode
        self.message = message
    }

    public var description: String { "SQLite error \(extendedCode): \(message)" }

    // Extended codes are `primary | (n << 8)` (sqlite3.h); spelled out because Swift does not
    // import the header's shifted macros reliably.
    /// `SQLITE_CONSTRAINT_PRIMARYKEY`.
    public static let constraintPrimaryKey: Int32 = SQLITE_CONSTRAINT | (6 << 8)
    /// `SQLITE_CONSTRAINT_UNIQUE`.
    public static let constraintUnique: Int32 = SQLITE_CONSTRAINT | (8 << 8)

    /// A `UNIQUE` or `PRIMARY KEY` constraint failed.
    public var isUniqueViolation: Bool { extendedCode == Self.constraintUnique || extendedCode == Self.constraintPrimaryKey }
    /// Any constraint failed (unique, check, not null, foreign key, …).
    public var isConstraintViolation: Bool { code == SQLITE_CONSTRAINT }
    /// Another connection holds a lock longer than the busy timeout (`SQLITE_BUSY`, `SQLITE_LOCKED`).
    public var isBusy: Bool { code == SQLITE_BUSY || code == SQLITE_LOCKED }
    /// The database cannot be written: the file, its directory or the file system is read-only.
    public var isReadOnly: Bool { code == SQLITE_READONLY }
    /// The disk is full (`SQLITE_FULL`).
    public var isFull: Bool { code == SQLITE_FULL }

    /// Whether retrying later may succeed: busy or locked, disk full, an I/O error, a file that
    /// cannot be opened (yet).
    public var isTransient: Bool {
        isBusy || isFull || code == SQLITE_IOERR || code == SQLITE_CANTOPEN
    }

    /// The error as callers of the adapter see it, with this error as its `underlying`:
    /// transient failures are `.unavailable` (transient); a read-only database is `.unavailable`
    /// but not transient (retrying does not help until an operator acts); anything else is
    /// `.internalError`. A failure that means something to one operation (a unique violation in an
    /// append, an invalid stored document in a query) is classified where it happens.
    public var minkError: MinkError {
        if isBusy {
            return MinkError(.unavailable, "the SQLite database is busy (\(message)); retry later", isTransient: true, underlying: self)
        }
        if isTransient { return MinkError(.unavailable, "SQLite storage failed: \(message)", isTransient: true, underlying: self) }
        if isReadOnly {
            return MinkError(.unavailable, "the SQLite database is read-only: \(message)", isTransient: false, underlying: self)
        }
        return MinkError(.internalError, "SQLite storage failed: \(message)", underlying: self)
    }
}

extension Error {
    /// This error as a `MinkError` (SQLite errors mapped, others wrapped as internal errors).
    var asMinkError: any Error {
        if let e = self as? SQLiteError { return e.minkError }
        return self
    }
}
