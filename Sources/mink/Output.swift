import Foundation
import Mink
import MinkWire

/// Writing to standard output and error, line by line and unbuffered: `mink tail | jq` must see
/// each event as it arrives.
enum Output {
    static func line(_ text: String) {
        write(Array((text + "\n").utf8), to: STDOUT_FILENO)
    }

    static func error(_ text: String) {
        write(Array((text + "\n").utf8), to: STDERR_FILENO)
    }

    static func bytes(_ bytes: [UInt8]) {
        write(bytes, to: STDOUT_FILENO)
    }

    private static func write(_ bytes: [UInt8], to fd: Int32) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                // A closed pipe (`mink tail | head`): nothing more can be printed; stop quietly.
                exit(errno == EPIPE ? 0 : 1)
            }
            offset += n
        }
    }

    /// An event: its JSON (section 4 of the API) on one line, or a readable line on a terminal.
    static func event(_ event: Event, json: Bool) {
        if json {
            line(String(decoding: event.jsonBytes(), as: UTF8.self))
        } else {
            var w = JSONWriter()
            w.timestamp(event.timestamp)
            let ts = String(decoding: w.bytes.dropFirst().dropLast(), as: UTF8.self)  // without the quotes
            line("#\(event.globalPosition)  \(event.streamID)@\(event.version)  \(event.type)  \(ts)  \(String(decoding: event.data, as: UTF8.self))")
        }
    }

    /// A JSON value on one line.
    static func json(_ value: JSONValue) {
        line(String(decoding: value.jsonData(), as: UTF8.self))
    }

    /// A JSON value indented, for a person.
    static func pretty(_ value: JSONValue) {
        if let object = try? JSONSerialization.jsonObject(with: value.jsonData(), options: [.fragmentsAllowed]),
            let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes])
        {
            line(String(decoding: data, as: UTF8.self))
        } else {
            json(value)
        }
    }

    /// Rows under a header, columns padded to their widest cell.
    static func table(_ header: [String], _ rows: [[String]]) {
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        func render(_ row: [String]) -> String {
            row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }
        line(render(header))
        for row in rows { line(render(row)) }
    }

    /// A cell's text for a JSON value: strings bare, null as `-`, others as JSON.
    static func cell(_ value: JSONValue?) -> String {
        switch value {
        case nil, .null?: "-"
        case .string(let s)?: s
        case let v?: String(decoding: v.jsonData(), as: UTF8.self)
        }
    }
}
