import Foundation
import Mink

// The wire form of export and import (HTTP-API.md section 9): NDJSON, one event per line exactly
// as section 4 writes it, and the import's result body.

extension ErrorCode {
    /// `409`: an import into a tenant that already has events.
    public static let tenantNotEmpty: ErrorCode = "tenant_not_empty"
}

/// The media type of an export and an import body.
public enum NDJSON {
    /// `application/x-ndjson`.
    public static let contentType = "application/x-ndjson"

    /// One event as an export line: the event's JSON (section 4) and `\n`.
    public static func line(_ event: Event, into writer: inout JSONWriter) {
        event.write(to: &writer)
        writer.endLine()
    }
}

/// The body of a successful import: `{"events": N, "streams": M, "head": P}`.
public struct ImportResultBody: Hashable, Sendable, JSONWritable {
    /// Events imported.
    public var events: Int64
    /// Distinct streams imported.
    public var streams: Int64
    /// The position of the last imported event.
    public var head: Int64

    /// Creates the body.
    public init(events: Int64, streams: Int64, head: Int64) {
        self.events = events
        self.streams = streams
        self.head = head
    }

    /// Writes the body.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("events")
        writer.int(events)
        writer.key("streams")
        writer.int(streams)
        writer.key("head")
        writer.int(head)
        writer.endObject()
    }

    /// Reads the body (the client's side).
    /// - Throws: `WireError`.
    public static func decode(_ body: [UInt8]) throws -> ImportResultBody {
        var reader = JSONReader(body)
        var events: Int64?, streams: Int64?, head: Int64?
        try reader.readObject(at: "", rejectUnknown: false) { reader, key, _ in
            switch key {
            case "events": events = try reader.readInt()
            case "streams": streams = try reader.readInt()
            case "head": head = try reader.readInt()
            default: return false
            }
            return true
        }
        try reader.finishBody()
        guard let events, let streams, let head else { throw missingKey("events") }
        return ImportResultBody(events: events, streams: streams, head: head)
    }
}

extension Event {
    /// Reads one import line strictly: every key of section 4 but `metadata` is required, and an
    /// unknown key (in the event or its metadata) is refused rather than dropped — an import must
    /// keep everything it is given, and a key it does not know it could not keep.
    /// - Throws: `WireError`.
    public init(importLine bytes: [UInt8]) throws {
        var reader = JSONReader(bytes)
        try self.init(from: &reader, at: "", rejectUnknown: true)
        try reader.finishBody()
        // Stored minified, as an append stores it (an export's lines already are; a hand-written
        // or pretty-printed line would otherwise keep its whitespace).
        let minified = RawJSON(unchecked: [UInt8](data)).minified().bytes
        if minified.count != data.count { data = Data(minified) }
    }
}

/// Splits an NDJSON import into events and checks them (``ImportValidator``), fed byte chunks.
///
/// A pure codec: feed it the input in pieces of any size, it returns the events of the lines
/// completed so far, in order; the same input split anywhere gives the same events. Empty lines
/// (and a final line without `\n`) are allowed. A line longer than ``maxLineBytes`` is refused
/// before it is held whole, so memory stays bounded whatever the input.
public struct NDJSONImportReader: Sendable {
    /// The longest line accepted (one event with its data): 64 MiB.
    public static let defaultMaxLineBytes = 64 << 20

    private var pending: [UInt8] = []
    private var line = 0
    private var validator = ImportValidator()
    private let maxLineBytes: Int
    private let maxEventBytes: Int?

    /// Creates a reader.
    /// - Parameter maxEventBytes: the largest `data` an event may carry (minkd's
    ///   `limits.maxEventBytes`, as for an append); `nil`: no limit but the line's.
    public init(maxLineBytes: Int = NDJSONImportReader.defaultMaxLineBytes, maxEventBytes: Int? = nil) {
        self.maxLineBytes = maxLineBytes
        self.maxEventBytes = maxEventBytes
    }

    /// The summary of the events returned so far.
    public var summary: ImportSummary { validator.summary }

    /// Adds input; returns the events of the lines it completed.
    /// - Throws: ``ImportLineError`` for a bad line.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws -> [Event] {
        var out: [Event] = []
        var start = pending.count
        pending.append(contentsOf: bytes)
        var lineStart = 0
        while let nl = pending[start...].firstIndex(of: 0x0A) {
            // The same limit for a line that arrived whole as for one still arriving (below):
            // the answer must not depend on how the input was cut into chunks.
            if nl - lineStart > maxLineBytes {
                throw ImportLineError(line: line + 1, code: "bad_request", message: "line longer than \(maxLineBytes) bytes")
            }
            try consume(Array(pending[lineStart..<nl]), into: &out)
            lineStart = nl + 1
            start = lineStart
        }
        if lineStart > 0 { pending.removeFirst(lineStart) }
        if pending.count > maxLineBytes {
            throw ImportLineError(line: line + 1, code: "bad_request", message: "line longer than \(maxLineBytes) bytes")
        }
        return out
    }

    /// Ends the input; returns the event of a last line without `\n`.
    /// - Throws: ``ImportLineError``.
    public mutating func finish() throws -> [Event] {
        var out: [Event] = []
        if !pending.isEmpty {
            let last = pending
            pending = []
            try consume(last, into: &out)
        }
        return out
    }

    private mutating func consume(_ bytes: [UInt8], into out: inout [Event]) throws {
        line += 1
        var bytes = bytes
        if bytes.last == 0x0D { bytes.removeLast() }
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return }
        let event: Event
        do {
            event = try Event(importLine: bytes)
        } catch let e as WireError {
            throw ImportLineError(line: line, code: e.code.rawValue, message: e.message)
        } catch let e as JSONError {
            let wire = WireError(e)
            throw ImportLineError(line: line, code: wire.code.rawValue, message: wire.message)
        }
        if let maxEventBytes, event.data.count > maxEventBytes {
            throw ImportLineError(
                line: line, code: ErrorCode.payloadTooLarge.rawValue,
                message: "data: \(event.data.count) bytes, over the limit of \(maxEventBytes) (limits.maxEventBytes, as for an append)"
            )
        }
        try validator.accept(event, line: line)
        out.append(event)
    }
}
