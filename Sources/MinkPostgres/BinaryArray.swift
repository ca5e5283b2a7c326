import Foundation

/// One-dimensional arrays in PostgreSQL's binary format (what `array_recv` reads), sent as binary
/// parameters (``PostgresValue/bytes(_:)``) cast in the statement (`$3::text[]`, `$5::int8[]`,
/// `$9::bytea[]`).
///
/// Why binary: a batch of appends sends every column as one array, and the text format would
/// escape each string and hex-encode each payload (twice its size); here strings and payloads are
/// copied as they are, each behind its length. The server still checks that text is valid in its
/// encoding (a NUL is rejected, which is why callers check for NUL beforehand).
enum BinaryArray {
    /// Element type OIDs (`pg_type`), which `array_recv` checks against the cast.
    private static let int8OID: UInt32 = 20
    private static let textOID: UInt32 = 25
    private static let byteaOID: UInt32 = 17

    /// A `text[]`.
    static func text(_ values: [String]) -> Data {
        var out = header(count: values.count, elementType: textOID, capacity: values.reduce(0) { $0 + 4 + $1.utf8.count })
        for v in values {
            append(Int32(v.utf8.count), to: &out)
            out.append(contentsOf: v.utf8)
        }
        return Data(out)
    }

    /// An `int8[]`.
    static func int8(_ values: [Int64]) -> Data {
        var out = header(count: values.count, elementType: int8OID, capacity: values.count * 12)
        for v in values {
            append(Int32(8), to: &out)
            let bits = UInt64(bitPattern: v)
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift))) }
        }
        return Data(out)
    }

    /// A `bytea[]`.
    static func bytea(_ values: [Data]) -> Data {
        var out = header(count: values.count, elementType: byteaOID, capacity: values.reduce(0) { $0 + 4 + $1.count })
        for v in values {
            append(Int32(v.count), to: &out)
            out.append(contentsOf: v)
        }
        return Data(out)
    }

    /// Dimensions, null flag, element type, then (for a non-empty array) its length and lower bound 1.
    private static func header(count: Int, elementType: UInt32, capacity: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(20 + capacity)
        append(Int32(count == 0 ? 0 : 1), to: &out)  // an empty array has no dimension
        append(Int32(0), to: &out)  // no NULL elements
        append(Int32(bitPattern: elementType), to: &out)
        if count > 0 {
            append(Int32(count), to: &out)
            append(Int32(1), to: &out)
        }
        return out
    }

    private static func append(_ v: Int32, to out: inout [UInt8]) {
        let bits = UInt32(bitPattern: v)
        out.append(UInt8(truncatingIfNeeded: bits >> 24))
        out.append(UInt8(truncatingIfNeeded: bits >> 16))
        out.append(UInt8(truncatingIfNeeded: bits >> 8))
        out.append(UInt8(truncatingIfNeeded: bits))
    }
}
