import Foundation
import Logging
import Mink
import MinkWire
import Synchronization

/// A swift-log handler writing one JSON object per line to standard error:
/// `{"ts":"…","level":"info","label":"minkd","msg":"…", …metadata}`.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    private let label: String
    private static let lock = Mutex(())

    /// Creates a handler for a logger label.
    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var w = JSONWriter(capacity: 256)
        w.beginObject()
        w.key("ts"); w.timestamp(.now())
        w.key("level"); w.string(event.level.rawValue)
        w.key("label"); w.string(label)
        w.key("msg"); w.string(event.message.description)
        let merged = metadata.merging(event.metadata ?? [:], uniquingKeysWith: { _, new in new })
        for key in merged.keys.sorted() where !["ts", "level", "label", "msg"].contains(key) {
            w.key(key); w.string(merged[key]!.description)
        }
        w.endObject()
        var bytes = w.bytes
        bytes.append(UInt8(ascii: "\n"))
        Self.lock.withLock { _ in
            // One write(2) per line, so lines from several threads never interleave.
            bytes.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let n = write(STDERR_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
                    if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { break }
                }
            }
        }
    }
}
