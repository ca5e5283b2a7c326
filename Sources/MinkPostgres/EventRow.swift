import Foundation
import Mink

/// Encoding and decoding of event rows.
enum EventRow {
    /// Decodes the columns of ``Statements/eventColumns`` starting at column 0.
    static func decode(_ r: PostgresResult, _ row: Int) throws -> Event {
        Event(
            id: r.string(row, 0) ?? "", streamID: r.string(row, 1) ?? "", type: r.string(row, 2) ?? "",
            data: r.bytes(row, 3) ?? Data(), metadata: try decodeMetadata(r.string(row, 4) ?? "{}"),
            version: r.int64(row, 5) ?? 0, globalPosition: UInt64(r.int64(row, 6) ?? 0),
            timestamp: date(microseconds: r.int64(row, 7) ?? 0)
        )
    }

    static func decodeAll(_ r: PostgresResult) throws -> [Event] {
        try (0..<r.rowCount).map { try decode(r, $0) }
    }

    /// Timestamps are stored with microsecond precision (`timestamptz`): the adapter takes the
    /// commit time to the microsecond itself, so an append's result and later reads carry the same
    /// `Date`. The nearest microsecond, not a truncation: an imported timestamp, exact to the
    /// microsecond, is a `Double` that may sit just below it, and truncating lost that microsecond.
    static func microseconds(_ date: Date) -> Int64 {
        date.microsecondsSince1970()
    }

    static func date(microseconds: Int64) -> Date {
        Date(microsecondsSince1970: microseconds)
    }

    /// Metadata as JSON text, keeping empty strings (`Metadata`'s own coding drops them, and a
    /// read must return exactly what was appended): `{"c":…,"k":…,"t":…,"u":…,"x":{…}}` with the
    /// keys sorted and absent values left out — the text Foundation's `JSONEncoder` (sorted keys)
    /// wrote for the same values, written here with ``JSONWriter`` (the encoder and a decoder
    /// per event were most of a metadata-carrying event's encode and decode time).
    static func encodeMetadata(_ m: Metadata) throws -> String {
        if m == Metadata() { return "{}" }
        var w = JSONWriter(capacity: 64)
        w.beginObject()
        if let c = m.correlationID { w.key("c"); w.string(c) }
        if let k = m.causationID { w.key("k"); w.string(k) }
        if let t = m.tenantID { w.key("t"); w.string(t) }
        if let u = m.userID { w.key("u"); w.string(u) }
        if !m.custom.isEmpty {
            w.key("x")
            w.sortedObject(m.custom)
        }
        w.endObject()
        return String(decoding: w.bytes, as: UTF8.self)
    }

    /// Metadata from the text ``encodeMetadata(_:)`` stores (any JSON object of that shape; other
    /// members are ignored, `null` is an absent value).
    static func decodeMetadata(_ text: String) throws -> Metadata {
        if text == "{}" { return Metadata() }
        func optionalString(_ r: inout JSONReader) throws -> String? {
            try r.readNullIfPresent() ? nil : try r.readString()
        }
        do {
            var r = JSONReader(text)
            var m = Metadata()
            try r.beginObject()
            while let key = try r.nextKey() {
                switch key {
                case "c": m.correlationID = try optionalString(&r)
                case "k": m.causationID = try optionalString(&r)
                case "t": m.tenantID = try optionalString(&r)
                case "u": m.userID = try optionalString(&r)
                case "x":
                    guard try !r.readNullIfPresent() else { continue }
                    try r.beginObject()
                    while let name = try r.nextKey() { m.custom[name] = try r.readString() }
                default: try r.skipValue()
                }
            }
            try r.finish()
            return m
        } catch {
            throw MinkError(.serializationFailed, "stored event metadata could not be decoded")
        }
    }
}

/// Text for a `jsonb` column from JSON bytes.
///
/// `jsonb` rejects the escape `\u0000`; documents keep their exact bytes in a `bytea` column and
/// the `jsonb` copy used for queries gets `\uFFFD` in its place (the only difference a query can
/// observe).
func jsonbText(_ data: Data) -> String {
    let bytes = [UInt8](data)
    guard containsNULEscape(bytes) else { return String(decoding: bytes, as: UTF8.self) }
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    var i = 0
    while i < bytes.count {
        let b = bytes[i]
        if b == UInt8(ascii: "\\"), i + 1 < bytes.count {
            if bytes[i + 1] == UInt8(ascii: "u"), i + 5 < bytes.count, bytes[(i + 2)...(i + 5)].allSatisfy({ $0 == UInt8(ascii: "0") }) {
                out.append(contentsOf: Array("\\ufffd".utf8))
                i += 6
                continue
            }
            out.append(b)
            out.append(bytes[i + 1])
            i += 2
            continue
        }
        out.append(b)
        i += 1
    }
    return String(decoding: out, as: UTF8.self)
}

private func containsNULEscape(_ bytes: [UInt8]) -> Bool {
    guard bytes.count >= 6 else { return false }
    for i in 0...(bytes.count - 6) where bytes[i] == UInt8(ascii: "\\") && bytes[i + 1] == UInt8(ascii: "u") && bytes[i + 2] == 48 {
        return true
    }
    return false
}
