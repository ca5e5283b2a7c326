import CLibPQ
import Foundation
import Mink

/// Event rows read in binary format (``readAll``'s hot path: projection catch-up, subscriptions):
/// the server sends `bytea` and `timestamptz` as they are stored instead of rendering hex text and
/// a `numeric` epoch per row, and nothing is parsed back from text here.
extension EventRow {
    /// The columns of a binary read, in ``decodeBinary(_:_:)``'s order.
    static let binaryColumns = "event_id, stream_id, type, data, metadata, version, position, created_at"

    /// Microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01 (a binary `timestamptz` is
    /// microseconds since the latter: `integer_datetimes`, the only setting since PostgreSQL 10).
    static let postgresEpochMicroseconds: Int64 = 946_684_800_000_000

    /// Decodes a row of ``binaryColumns`` read with `binaryResult: true`.
    static func decodeBinary(_ r: PostgresResult, _ row: Int) throws -> Event {
        Event(
            id: r.string(row, 0) ?? "", streamID: r.string(row, 1) ?? "", type: r.string(row, 2) ?? "",
            data: r.rawBytes(row, 3) ?? Data(), metadata: try decodeMetadata(r.string(row, 4) ?? "{}"),
            version: r.binaryInt64(row, 5) ?? 0, globalPosition: UInt64(r.binaryInt64(row, 6) ?? 0),
            timestamp: date(microseconds: (r.binaryInt64(row, 7) ?? 0) &+ postgresEpochMicroseconds)
        )
    }

    static func decodeAllBinary(_ r: PostgresResult) throws -> [Event] {
        try (0..<r.rowCount).map { try decodeBinary(r, $0) }
    }
}

extension PostgresResult {
    /// A binary-format `int8` (or `timestamptz`) column: 8 bytes, big-endian.
    func binaryInt64(_ row: Int, _ column: Int) -> Int64? {
        if isNull(row, column) { return nil }
        guard PQgetlength(res, Int32(row), Int32(column)) == 8, let p = PQgetvalue(res, Int32(row), Int32(column)) else { return nil }
        var v: UInt64 = 0
        for i in 0..<8 { v = v << 8 | UInt64(UInt8(bitPattern: p[i])) }
        return Int64(bitPattern: v)
    }

    /// A binary-format column's bytes as sent (`bytea`: the stored bytes).
    func rawBytes(_ row: Int, _ column: Int) -> Data? {
        if isNull(row, column) { return nil }
        let n = Int(PQgetlength(res, Int32(row), Int32(column)))
        guard n > 0, let p = PQgetvalue(res, Int32(row), Int32(column)) else { return Data() }
        return Data(bytes: p, count: n)
    }
}
