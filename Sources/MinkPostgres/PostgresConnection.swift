import CLibPQ
import Foundation

/// A bound parameter of a statement.
enum PostgresValue {
    /// Sent in text format; must not contain a NUL character (C strings cannot carry one).
    case text(String)
    /// Sent in binary format: the raw bytes of a `bytea` parameter, never escaped.
    case bytes(Data)
    /// SQL `NULL`.
    case null

    static func int(_ v: Int64) -> PostgresValue { .text(String(v)) }
    static func int(_ v: Int) -> PostgresValue { .text(String(v)) }
    static func int(_ v: UInt64) -> PostgresValue { .text(String(v)) }

    /// A `text[]` parameter (use with `$n::text[]`).
    static func textArray(_ values: [String]) -> PostgresValue {
        var s = "{"
        for (i, v) in values.enumerated() {
            if i > 0 { s += "," }
            s += "\""
            for c in v.unicodeScalars {
                if c == "\"" || c == "\\" { s += "\\" }
                s.unicodeScalars.append(c)
            }
            s += "\""
        }
        return .text(s + "}")
    }
}

/// One libpq connection (`PGconn *`).
///
/// Not thread-safe and not `Sendable`: it is created, used and closed by exactly one
/// ``ConnectionWorker`` on that worker's serial queue (STYLE: one C handle, one owner). Every call
/// blocks the calling thread, which is why it never runs on Swift's cooperative pool.
final class PostgresConnection {
    private var handle: OpaquePointer?
    /// Names of the statements prepared on this connection, by SQL text.
    private var prepared: [String: String] = [:]
    private static let maxPrepared = 128

    /// Opens a connection; `parameters` are libpq keywords, the first `dbname` may be a whole
    /// connection string or URI (libpq's `expand_dbname`).
    /// - Throws: ``PostgresError`` with `connectionLost` when the server cannot be reached.
    init(parameters: [(String, String)]) throws {
        let keys = parameters.map { strdup($0.0) } + [nil]
        let values = parameters.map { strdup($0.1) } + [nil]
        defer {
            keys.forEach { free($0) }
            values.forEach { free($0) }
        }
        let conn = keys.map { UnsafePointer($0) }.withUnsafeBufferPointer { k in
            values.map { UnsafePointer($0) }.withUnsafeBufferPointer { v in
                PQconnectdbParams(k.baseAddress, v.baseAddress, 1)
            }
        }
        guard let conn else { throw PostgresError(sqlState: nil, message: "out of memory", connectionLost: true) }
        if PQstatus(conn) != CONNECTION_OK {
            let message = Self.clean(PQerrorMessage(conn))
            PQfinish(conn)
            // A missing database is not transient for `.database` tenancy, which creates it.
            let sqlState = message.contains("does not exist") && message.contains("database") ? "3D000" : nil
            throw PostgresError(sqlState: sqlState, message: message, connectionLost: sqlState == nil)
        }
        handle = conn
    }

    deinit { close() }

    /// Closes the connection (idempotent).
    func close() {
        if let handle { PQfinish(handle) }
        handle = nil
        prepared = [:]
    }

    /// Whether the connection is open and healthy as far as libpq knows.
    var isOpen: Bool { handle.map { PQstatus($0) == CONNECTION_OK } ?? false }

    /// The server process ID serving this connection (NOTIFY reports it as the sender).
    var backendPID: Int32 { handle.map { PQbackendPID($0) } ?? 0 }

    /// The socket, for `poll`.
    var socket: Int32 { handle.map { PQsocket($0) } ?? -1 }

    /// Whether the connection is unusable without a round trip: an idle connection's socket
    /// should have nothing to read; if it has, the server sent a termination notice or closed it
    /// (a restart), so the caller reconnects instead of failing the next operation.
    var isStale: Bool {
        guard let handle, PQstatus(handle) == CONNECTION_OK else { return true }
        var fds = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
        let n = poll(&fds, 1, 0)
        return n != 0
    }

    /// Whether a transaction is open or failed on this connection.
    var inTransaction: Bool {
        guard let handle else { return false }
        return PQtransactionStatus(handle) != PQTRANS_IDLE
    }

    /// Runs a statement with bound parameters.
    /// - Parameters:
    ///   - prepare: prepare the statement once per connection and reuse it (for hot statements
    ///     whose text does not vary).
    /// - Throws: ``PostgresError``.
    @discardableResult
    func query(_ sql: String, _ params: [PostgresValue] = [], prepare: Bool = false) throws -> PostgresResult {
        guard let handle else { throw PostgresError(sqlState: nil, message: "connection is closed", connectionLost: true) }
        var buffer: [UInt8] = [0]
        var offsets: [Int?] = []
        var lengths: [Int32] = []
        var formats: [Int32] = []
        offsets.reserveCapacity(params.count)
        for p in params {
            switch p {
            case .text(let s):
                if s.utf8.contains(0) {
                    throw PostgresError(sqlState: "22021", message: "text values cannot contain a NUL character")
                }
                offsets.append(buffer.count)
                buffer.append(contentsOf: s.utf8)
                buffer.append(0)
                lengths.append(0)
                formats.append(0)
            case .bytes(let d):
                offsets.append(buffer.count)
                buffer.append(contentsOf: d)
                lengths.append(Int32(d.count))
                formats.append(1)
            case .null:
                offsets.append(nil)
                lengths.append(0)
                formats.append(0)
            }
        }
        var statementName: String?
        if prepare {
            if let name = prepared[sql] {
                statementName = name
            } else if prepared.count < Self.maxPrepared {
                let name = "mink_\(prepared.count)"
                let res = PQprepare(handle, name, sql, Int32(params.count), nil)
                _ = try PostgresResult.check(res, handle)
                prepared[sql] = name
                statementName = name
            }
        }
        let res: OpaquePointer? = buffer.withUnsafeBufferPointer { base in
            let pointers: [UnsafePointer<CChar>?] = offsets.map { offset in
                offset.map { UnsafeRawPointer(base.baseAddress! + $0).assumingMemoryBound(to: CChar.self) }
            }
            return pointers.withUnsafeBufferPointer { p in
                if let statementName {
                    return PQexecPrepared(handle, statementName, Int32(params.count), p.baseAddress, lengths, formats, 0)
                }
                return PQexecParams(handle, sql, Int32(params.count), nil, p.baseAddress, lengths, formats, 0)
            }
        }
        return try PostgresResult.check(res, handle)
    }

    /// Runs one or more statements without parameters (simple query protocol).
    /// - Throws: ``PostgresError``.
    func execute(_ sql: String) throws {
        guard let handle else { throw PostgresError(sqlState: nil, message: "connection is closed", connectionLost: true) }
        _ = try PostgresResult.check(PQexec(handle, sql), handle)
    }

    /// Runs `body` in a transaction: `BEGIN` (plus `begin`, e.g. a lock, in the same round trip),
    /// `COMMIT` on success, `ROLLBACK` when `body` throws.
    func transaction<T>(begin: String = "", _ body: () throws -> T) throws -> T {
        try execute(begin.isEmpty ? "BEGIN" : "BEGIN; " + begin)
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            rollbackIfNeeded()
            throw error
        }
    }

    /// Rolls back an open or failed transaction; closes the connection if even that fails.
    func rollbackIfNeeded() {
        guard isOpen, inTransaction else { return }
        do { try execute("ROLLBACK") } catch { close() }
    }

    /// Pending notifications received on this connection (after `consumeInput`).
    func notifications() -> [(channel: String, payload: String, pid: Int32)] {
        guard let handle else { return [] }
        var out: [(String, String, Int32)] = []
        while let n = PQnotifies(handle) {
            out.append((String(cString: n.pointee.relname), String(cString: n.pointee.extra), n.pointee.be_pid))
            PQfreemem(n)
        }
        return out
    }

    /// Reads what the server sent.
    /// - Throws: ``PostgresError`` with `connectionLost` when the connection broke.
    func consumeInput() throws {
        guard let handle, PQconsumeInput(handle) == 1, PQstatus(handle) == CONNECTION_OK else {
            let message = handle.map { Self.clean(PQerrorMessage($0)) } ?? "connection is closed"
            throw PostgresError(sqlState: nil, message: message, connectionLost: true)
        }
    }

    static func clean(_ message: UnsafePointer<CChar>?) -> String {
        guard let message else { return "unknown error" }
        return String(cString: message).trimmingCharacters(in: .whitespacesAndNewlines)
            .replacingOccurrences(of: "\n", with: " ")
    }
}

/// A query result (`PGresult *`), freed when released; used only on its connection's thread.
final class PostgresResult {
    private let res: OpaquePointer

    private init(_ res: OpaquePointer) { self.res = res }
    deinit { PQclear(res) }

    /// Wraps a result, turning failures into ``PostgresError``.
    static func check(_ res: OpaquePointer?, _ conn: OpaquePointer) throws -> PostgresResult {
        guard let res else {
            throw PostgresError(sqlState: nil, message: PostgresConnection.clean(PQerrorMessage(conn)),
                                connectionLost: PQstatus(conn) != CONNECTION_OK)
        }
        let status = PQresultStatus(res)
        if status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK { return PostgresResult(res) }
        defer { PQclear(res) }
        func field(_ code: UInt8) -> String? {
            PQresultErrorField(res, Int32(code)).map { String(cString: $0) }
        }
        let lost = PQstatus(conn) != CONNECTION_OK
        let sqlState = field(UInt8(ascii: "C"))
        let message = field(UInt8(ascii: "M")) ?? PostgresConnection.clean(PQresultErrorMessage(res))
        throw PostgresError(sqlState: sqlState, message: message, constraint: field(UInt8(ascii: "n")), connectionLost: lost)
    }

    var rowCount: Int { Int(PQntuples(res)) }

    func isNull(_ row: Int, _ column: Int) -> Bool { PQgetisnull(res, Int32(row), Int32(column)) == 1 }

    func string(_ row: Int, _ column: Int) -> String? {
        if isNull(row, column) { return nil }
        let n = Int(PQgetlength(res, Int32(row), Int32(column)))
        return PQgetvalue(res, Int32(row), Int32(column)).withMemoryRebound(to: UInt8.self, capacity: n) {
            String(decoding: UnsafeBufferPointer(start: $0, count: n), as: UTF8.self)
        }
    }

    func int64(_ row: Int, _ column: Int) -> Int64? {
        if isNull(row, column) { return nil }
        return strtoll(PQgetvalue(res, Int32(row), Int32(column)), nil, 10)
    }

    func bool(_ row: Int, _ column: Int) -> Bool? {
        if isNull(row, column) { return nil }
        return PQgetvalue(res, Int32(row), Int32(column)).pointee == CChar(UInt8(ascii: "t"))
    }

    /// A `bytea` column in text format (`\x` + hex digits).
    func bytes(_ row: Int, _ column: Int) -> Data? {
        if isNull(row, column) { return nil }
        let n = Int(PQgetlength(res, Int32(row), Int32(column)))
        return PQgetvalue(res, Int32(row), Int32(column)).withMemoryRebound(to: UInt8.self, capacity: n) { p in
            guard n >= 2, p[0] == UInt8(ascii: "\\"), p[1] == UInt8(ascii: "x") else {
                return Data(UnsafeBufferPointer(start: p, count: n))
            }
            let count = (n - 2) / 2
            var out = Data(count: count)
            out.withUnsafeMutableBytes { (dst: UnsafeMutableRawBufferPointer) in
                for i in 0..<count {
                    dst[i] = Self.hex(p[2 + 2 * i]) << 4 | Self.hex(p[3 + 2 * i])
                }
            }
            return out
        }
    }

    private static func hex(_ c: UInt8) -> UInt8 {
        switch c {
        case 48...57: return c - 48
        case 97...102: return c - 87
        case 65...70: return c - 55
        default: return 0
        }
    }
}
