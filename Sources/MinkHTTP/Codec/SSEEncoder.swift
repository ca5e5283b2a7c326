/// Encodes server-sent events (`text/event-stream`, WHATWG HTML 9.2).
public enum SSEEncoder {
    /// One message: optional `id:` and `event:` lines, one `data:` line per line of
    /// `data` (split at LF, CRLF or CR), and the empty line that dispatches it.
    ///
    /// `id` and `event` must not contain line breaks (they are removed if they do).
    public static func message(id: String? = nil, event: String? = nil, data: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(data.utf8.count + 32)
        if let id {
            out.append(contentsOf: "id: ".utf8)
            out.append(contentsOf: id.utf8.filter { $0 != 0x0A && $0 != 0x0D && $0 != 0 })
            out.append(0x0A)
        }
        if let event {
            out.append(contentsOf: "event: ".utf8)
            out.append(contentsOf: event.utf8.filter { $0 != 0x0A && $0 != 0x0D })
            out.append(0x0A)
        }
        appendData(Array(data.utf8), to: &out)
        out.append(0x0A)
        return out
    }

    /// One message whose data is raw bytes (e.g. JSON straight from storage).
    public static func message(id: String? = nil, event: String? = nil, data: [UInt8]) -> [UInt8] {
        message(id: id, event: event, data: String(decoding: data, as: UTF8.self))
    }

    private static func appendData(_ data: [UInt8], to out: inout [UInt8]) {
        var lineStart = 0
        var i = 0
        func emit(_ end: Int) {
            out.append(contentsOf: "data: ".utf8)
            out.append(contentsOf: data[lineStart..<end])
            out.append(0x0A)
        }
        while i < data.count {
            let b = data[i]
            if b == 0x0A || b == 0x0D {
                emit(i)
                if b == 0x0D, i + 1 < data.count, data[i + 1] == 0x0A { i += 1 }
                lineStart = i + 1
            }
            i += 1
        }
        emit(data.count)
    }

    /// A comment line (`: text`), ignored by clients; used as a keep-alive.
    public static func comment(_ text: String) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: ":"), 0x20]
        out.append(contentsOf: text.utf8.filter { $0 != 0x0A && $0 != 0x0D })
        out.append(0x0A)
        out.append(0x0A)
        return out
    }

    /// `retry: ms`: the client's reconnection delay.
    public static func retry(_ milliseconds: Int) -> [UInt8] {
        Array("retry: \(milliseconds)\n\n".utf8)
    }
}
