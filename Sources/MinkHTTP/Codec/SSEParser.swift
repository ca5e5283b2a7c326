/// One dispatched server-sent event.
public struct SSEEvent: Sendable, Equatable {
    /// The event type: the `event:` field, or `message` when absent.
    public var event: String
    /// The data lines joined with LF.
    public var data: String
    /// The last event ID at dispatch time (persists across events until changed),
    /// as `EventSource.lastEventId`; send it back as `Last-Event-ID` to resume.
    public var lastEventID: String
    /// Whether this very message carried an `id:` field.
    public var hasID: Bool

    /// Creates an event.
    public init(event: String = "message", data: String, lastEventID: String = "", hasID: Bool = false) {
        self.event = event
        self.data = data
        self.lastEventID = lastEventID
        self.hasID = hasID
    }
}

/// A client-side `text/event-stream` parser per the WHATWG HTML spec (9.2.6):
/// a pure value fed byte chunks, returning dispatched events.
///
/// Handles a leading BOM, CR / LF / CRLF line ends (also split across chunks),
/// comments, `event`, `data` (multi-line), `id` (ignored when it contains NUL; it
/// persists as the last event ID) and `retry` (digits only).
public struct SSEParser: Sendable {
    private var line: [UInt8] = []
    private var sawCR = false
    private var bomChecked = false
    private var bomPrefix: [UInt8] = []
    private var data: [UInt8] = []
    private var hasData = false
    private var eventType = ""
    private var messageHadID = false
    /// The last event ID (updated by `id:` fields, even of undispatched messages).
    public private(set) var lastEventID: String
    /// The reconnection time in milliseconds set by the last valid `retry:` field.
    public private(set) var reconnectionTime: Int?

    /// Creates a parser; `lastEventID` seeds the ID (e.g. after reconnecting).
    public init(lastEventID: String = "") {
        self.lastEventID = lastEventID
    }

    /// Feeds bytes; returns the events dispatched by them, in order.
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [SSEEvent] {
        var events: [SSEEvent] = []
        for b in bytes {
            if !bomChecked {
                // A UTF-8 BOM (EF BB BF) at the very start is dropped.
                let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
                bomPrefix.append(b)
                if bomPrefix == Array(bom.prefix(bomPrefix.count)) {
                    if bomPrefix.count == 3 { bomChecked = true; bomPrefix = [] }
                    continue
                }
                bomChecked = true
                let pending = bomPrefix
                bomPrefix = []
                for p in pending { consume(p, into: &events) }
                continue
            }
            consume(b, into: &events)
        }
        return events
    }

    private mutating func consume(_ b: UInt8, into events: inout [SSEEvent]) {
        if sawCR {
            sawCR = false
            if b == 0x0A { return }  // CRLF: the CR already ended the line
        }
        if b == 0x0D {
            sawCR = true
            processLine(into: &events)
        } else if b == 0x0A {
            processLine(into: &events)
        } else {
            line.append(b)
        }
    }

    private mutating func processLine(into events: inout [SSEEvent]) {
        defer { line.removeAll(keepingCapacity: true) }
        if line.isEmpty {
            dispatch(into: &events)
            return
        }
        if line[0] == UInt8(ascii: ":") { return }
        let field: ArraySlice<UInt8>
        var value: ArraySlice<UInt8>
        if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
            field = line[..<colon]
            value = line[(colon + 1)...]
            if value.first == 0x20 { value = value.dropFirst() }
        } else {
            field = line[...]
            value = []
        }
        switch String(decoding: field, as: UTF8.self) {
        case "event":
            eventType = String(decoding: value, as: UTF8.self)
        case "data":
            data.append(contentsOf: value)
            data.append(0x0A)
            hasData = true
        case "id":
            if !value.contains(0) {
                lastEventID = String(decoding: value, as: UTF8.self)
                messageHadID = true
            }
        case "retry":
            if !value.isEmpty, value.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let ms = Int(String(decoding: value, as: UTF8.self)) {
                reconnectionTime = ms
            }
        default:
            break
        }
    }

    private mutating func dispatch(into events: inout [SSEEvent]) {
        defer {
            data.removeAll(keepingCapacity: true)
            hasData = false
            eventType = ""
            messageHadID = false
        }
        guard hasData else { return }
        if data.last == 0x0A { data.removeLast() }
        events.append(SSEEvent(
            event: eventType.isEmpty ? "message" : eventType,
            data: String(decoding: data, as: UTF8.self),
            lastEventID: lastEventID,
            hasID: messageHadID))
    }
}
