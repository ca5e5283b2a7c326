import CSQLite
import Foundation
import MinkSQL

/// A value bound to a SQLite statement parameter.
enum SQLiteValue {
    case text(String)
    /// Bytes stored as TEXT exactly as given (read-model documents: JSON functions need TEXT).
    case textBytes(Data)
    case int(Int64)
    case double(Double)
    case blob(Data)
    case null

    init(_ bind: SQLBind) {
        switch bind {
        case .text(let s): self = .text(s)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .blob(let b): self = .blob(b)
        case .null: self = .null
        }
    }
}

/// One row of a result, valid only inside the row callback.
struct SQLiteRow {
    let statement: OpaquePointer

    func isNull(_ i: Int32) -> Bool { sqlite3_column_type(statement, i) == SQLITE_NULL }
    func int(_ i: Int32) -> Int64 { sqlite3_column_int64(statement, i) }
    func double(_ i: Int32) -> Double { sqlite3_column_double(statement, i) }

    /// The column's bytes as text (embedded NULs included: the length comes from `sqlite3_column_bytes`).
    func text(_ i: Int32) -> String {
        guard let p = sqlite3_column_text(statement, i) else { return "" }
        let n = Int(sqlite3_column_bytes(statement, i))
        return String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
    }

    func optionalText(_ i: Int32) -> String? { isNull(i) ? nil : text(i) }

    /// The column's bytes exactly (TEXT or BLOB).
    func bytes(_ i: Int32) -> Data {
        if sqlite3_column_type(statement, i) == SQLITE_TEXT {
            guard let p = sqlite3_column_text(statement, i) else { return Data() }
            return Data(bytes: p, count: Int(sqlite3_column_bytes(statement, i)))
        }
        guard let p = sqlite3_column_blob(statement, i) else { return Data() }
        return Data(bytes: p, count: Int(sqlite3_column_bytes(statement, i)))
    }
}

/// One `sqlite3*` handle with a cache of prepared statements.
///
/// Not thread-safe and not `Sendable`: each connection is owned by exactly one serial executor (the
/// writer queue or one reader queue of ``SQLiteDatabase``) and never touched from anywhere else.
extension SQLiteConnection {
    /// Runs `body`'s reads in one read transaction: one snapshot of the WAL for all of them (without
    /// `BEGIN` each statement is its own transaction and sees what committed before it). Read only:
    /// a failed `COMMIT` is rolled back, so a pooled reader never keeps a snapshot.
    func inOneSnapshot<T>(_ body: () throws -> T) throws -> T {
        try run("BEGIN")
        defer { if (try? run("COMMIT")) == nil { try? run("ROLLBACK") } }
        return try body()
    }
}

final class SQLiteConnection {
    private var handle: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]
    /// The database file.
    let path: String

    /// Opens (and for the writer, creates) a database file.
    init(path: String, create: Bool, busyTimeoutMilliseconds: Int32) throws {
        self.path = path
        _ = Self.configured
        var db: OpaquePointer?
        // NOMUTEX: the connection is confined to one serial queue, so SQLite's own mutex is not needed.
        var flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE
        if create { flags |= SQLITE_OPEN_CREATE }
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close_v2(db)
            throw SQLiteError(extendedCode: rc, message: "\(message) (\(path))")
        }
        handle = db
        sqlite3_busy_timeout(db, busyTimeoutMilliseconds)
    }

    deinit { close() }

    /// SQLite's process-wide configuration, set once before the first connection opens (and so
    /// before SQLite initializes): no memory statistics, whose global mutex every allocation takes
    /// (~4 % of the server's CPU in 100-event appends, perf).
    private static let configured: Void = { _ = csqlite_disable_memstatus() }()

    /// Finalizes every statement and closes the handle (idempotent).
    func close() {
        knownHead = nil
        for s in statements.values { sqlite3_finalize(s) }
        statements = [:]
        recentStatements = []
        nextRecent = 0
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    private func db() throws -> OpaquePointer {
        guard let handle else { throw SQLiteError(extendedCode: SQLITE_MISUSE, message: "the connection is closed") }
        return handle
    }

    private func error(_ rc: Int32) -> SQLiteError {
        guard let handle else { return SQLiteError(extendedCode: rc, message: "the connection is closed") }
        return SQLiteError(extendedCode: sqlite3_extended_errcode(handle), message: String(cString: sqlite3_errmsg(handle)))
    }

    /// Runs SQL text without parameters (several statements allowed): schema, pragmas.
    func execute(_ sql: String) throws {
        let db = try db()
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &message)
        if rc != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(db))
            sqlite3_free(message)
            throw SQLiteError(extendedCode: sqlite3_extended_errcode(db), message: text)
        }
    }

    /// Runs one statement, calling `row` for each result row.
    func query(_ sql: String, _ values: [SQLiteValue] = [], row: (SQLiteRow) throws -> Void) throws {
        try scan(sql, values, while: { r in
            try row(r)
            return true
        })
    }

    /// Runs a query, calling `row` for each result row until it returns `false` (the rest of the
    /// rows are never stepped).
    func scan(_ sql: String, _ values: [SQLiteValue] = [], while row: (SQLiteRow) throws -> Bool) throws {
        let statement = try prepared(sql)
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        try bind(values, to: statement)
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { return }
            guard rc == SQLITE_ROW else { throw error(rc) }
            if try !row(SQLiteRow(statement: statement)) { return }
        }
    }

    /// Runs one statement, ignoring rows.
    func run(_ sql: String, _ values: [SQLiteValue] = []) throws {
        try query(sql, values) { _ in }
    }

    /// The first column of the first row, as an integer (`nil` for no row or `NULL`).
    func int(_ sql: String, _ values: [SQLiteValue] = []) throws -> Int64? {
        var result: Int64?
        var seen = false
        try query(sql, values) { r in
            if !seen { result = r.isNull(0) ? nil : r.int(0) }
            seen = true
        }
        return result
    }

    /// The head position (`MAX(position)`) of a tenant as the last append on this connection left
    /// it, and the connection's change count then: valid while that count has not moved, i.e.
    /// while nothing else was written through this connection — the only one that writes the
    /// file. A savepoint rolled back does not lower the count, which is why an append remembers
    /// its head only as its very last step (see ``SQLiteStorage``'s append).
    private var knownHead: (tenant: String, head: Int64, changes: Int64)?

    /// The head position of `tenant` as remembered by ``rememberHead(_:tenant:)``, or `nil` when
    /// anything was written since (or another tenant's was remembered).
    func rememberedHead(tenant: String) -> Int64? {
        guard let known = knownHead, let handle, known.tenant == tenant, known.changes == sqlite3_total_changes64(handle) else {
            return nil
        }
        return known.head
    }

    /// Remembers `tenant`'s head position after an append's last statement.
    func rememberHead(_ head: Int64, tenant: String) {
        knownHead = handle.map { (tenant, head, sqlite3_total_changes64($0)) }
    }

    /// The number of rows changed by the last statement.
    var changes: Int { handle.map { Int(sqlite3_changes($0)) } ?? 0 }

    /// Whether no transaction is open (SQLite rolled back by itself after some errors).
    var isAutocommit: Bool { handle.map { sqlite3_get_autocommit($0) != 0 } ?? true }

    /// Whether SQLite opened the main database read-only (it does so silently when the file
    /// cannot be opened for writing).
    var isReadOnly: Bool { handle.map { sqlite3_db_readonly($0, "main") == 1 } ?? false }

    private func prepared(_ sql: String) throws -> OpaquePointer {
        // The statements run lately first: an append runs the same few statements (the stream's
        // row, the insert once per event, the stream's update, its savepoint), and a literal's
        // text compares by identity, where the dictionary hashes the whole text (~1 % of the
        // server's CPU, perf).
        for entry in recentStatements where entry.sql == sql { return entry.statement }
        let statement = try lookUp(sql)
        if recentStatements.count < Self.recentCapacity {
            recentStatements.append((sql, statement))
        } else {
            recentStatements[nextRecent] = (sql, statement)
            nextRecent = (nextRecent + 1) % Self.recentCapacity
        }
        return statement
    }

    /// How many statements ``recentStatements`` keeps.
    private static let recentCapacity = 8
    /// The statements ``prepared(_:)`` returned lately (they are in `statements` too), replaced
    /// oldest first from ``nextRecent``.
    private var recentStatements: [(sql: String, statement: OpaquePointer)] = []
    private var nextRecent = 0

    private func lookUp(_ sql: String) throws -> OpaquePointer {
        if let s = statements[sql] { return s }
        let db = try db()
        // Statements with variable-length IN lists make many distinct texts; keep the cache bounded.
        if statements.count >= 256 {
            for s in statements.values { sqlite3_finalize(s) }
            statements = [:]
            recentStatements = []
        nextRecent = 0
        }
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard rc == SQLITE_OK, let statement else { throw error(rc) }
        statements[sql] = statement
        return statement
    }

    private func bind(_ values: [SQLiteValue], to statement: OpaquePointer) throws {
        for (offset, value) in values.enumerated() {
            let i = Int32(offset + 1)
            let rc: Int32
            switch value {
            case .null: rc = sqlite3_bind_null(statement, i)
            case .int(let v): rc = sqlite3_bind_int64(statement, i, v)
            case .double(let v): rc = sqlite3_bind_double(statement, i, v)
            case .text(let s):
                var s = s
                rc = s.withUTF8 { Self.bindText(statement, i, UnsafeRawBufferPointer($0)) }
            case .textBytes(let d):
                rc = d.withUnsafeBytes { Self.bindText(statement, i, $0) }
            case .blob(let d):
                rc = d.withUnsafeBytes { buffer in
                    // An empty buffer may have no address; bind a zero-length blob, not NULL.
                    guard let base = buffer.baseAddress, buffer.count > 0 else { return sqlite3_bind_zeroblob(statement, i, 0) }
                    return csqlite_bind_blob_transient(statement, i, base, Int32(buffer.count))
                }
            }
            guard rc == SQLITE_OK else { throw error(rc) }
        }
    }

    /// Binds bytes as TEXT with their explicit length, so NUL bytes and any other byte survive.
    private static func bindText(_ statement: OpaquePointer, _ i: Int32, _ buffer: UnsafeRawBufferPointer) -> Int32 {
        guard let base = buffer.baseAddress, buffer.count > 0 else {
            // A NULL pointer would bind SQL NULL; an empty string must stay an empty string.
            return csqlite_bind_text_transient(statement, i, "", 0)
        }
        return csqlite_bind_text_transient(statement, i, base.assumingMemoryBound(to: CChar.self), Int32(buffer.count))
    }
}
