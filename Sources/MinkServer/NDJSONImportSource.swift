#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Mink
import MinkHTTP
import MinkWire

/// An import's events read from NDJSON bytes as the storage asks for them: from a request body
/// spooled to a file, from standard input, from a file. Gzip-encoded input is decoded on the way;
/// the decoded size is counted against a limit, so a gzip bomb stops at the limit and never
/// fills memory (at most one read, one 64 KiB inflate piece and one batch are held).
public final class NDJSONImportSource: EventImportSource, @unchecked Sendable {
    // Invariant for @unchecked Sendable: the storage calls `nextBatch` from one thread at a time
    // (the import's one transaction), and nothing else touches the state.

    /// The input ended with more decoded bytes than the limit allows.
    public struct TooLarge: Error, Sendable, CustomStringConvertible {
        /// The limit in bytes.
        public var limit: Int
        public var description: String { "the import body is larger than limits.maxImportBytes (\(limit) bytes)" }
    }

    /// The gzip encoding of the input is broken.
    public struct BadEncoding: Error, Sendable, CustomStringConvertible {
        public var description: String { "the import body is not valid gzip data" }
    }

    /// The input could not be read.
    public struct ReadFailed: Error, Sendable, CustomStringConvertible {
        /// What failed.
        public var reason: String
        public var description: String { "cannot read the import input: \(reason)" }
    }

    private let read: () throws -> [UInt8]
    private let gunzip: GzipDecoder?
    private let limit: Int
    private let batchSize: Int
    private var reader: NDJSONImportReader
    private var decoded = 0
    private var ready: [Event] = []
    private var ended = false

    /// Creates a source.
    /// - Parameters:
    ///   - gzip: whether the input is gzip-encoded.
    ///   - limit: the most decoded bytes accepted; 0: no limit.
    ///   - maxEventBytes: the largest `data` of one event (`limits.maxEventBytes`); `nil`: no limit.
    ///   - batchSize: events per batch handed to the storage.
    ///   - read: returns the next bytes of the input, an empty array at its end (blocking is fine:
    ///     it runs on the storage's own thread).
    public init(
        gzip: Bool, limit: Int = 0, maxEventBytes: Int? = nil, batchSize: Int = 1000, read: @escaping () throws -> [UInt8]
    ) throws {
        self.read = read
        self.reader = NDJSONImportReader(maxEventBytes: maxEventBytes)
        if gzip {
            self.gunzip = try GzipDecoder()
        } else {
            self.gunzip = nil
        }
        self.limit = limit
        self.batchSize = batchSize
    }

    /// A source reading a file descriptor (standard input, a file) until its end.
    public convenience init(fileDescriptor fd: Int32, gzip: Bool, limit: Int = 0, maxEventBytes: Int? = nil) throws {
        try self.init(gzip: gzip, limit: limit, maxEventBytes: maxEventBytes) {
            var buffer = [UInt8](repeating: 0, count: 256 * 1024)
            while true {
                let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ReadFailed(reason: String(cString: strerror(errno)))
                }
                buffer.removeLast(buffer.count - n)
                return buffer
            }
        }
    }

    /// What the source has returned so far.
    public var summary: ImportSummary { reader.summary }

    public func nextBatch() throws -> [Event]? {
        while ready.count < batchSize && !ended {
            if let gunzip, !gunzip.needsInput {
                // One decoded piece at a time, so that a highly compressed input never expands
                // in memory beyond a piece and the events of a batch.
                let piece: [UInt8]?
                do { piece = try gunzip.next() } catch { throw BadEncoding() }
                if let piece { try take(piece) }
                continue
            }
            let raw = try read()
            if raw.isEmpty {
                if let gunzip {
                    do { try gunzip.finish() } catch { throw BadEncoding() }
                }
                ready += try reader.finish()
                ended = true
            } else if let gunzip {
                gunzip.feed(raw)
            } else {
                try take(raw)
            }
        }
        if ready.isEmpty { return nil }
        let n = min(batchSize, ready.count)
        let batch = Array(ready.prefix(n))
        ready.removeFirst(n)
        return batch
    }

    private func take(_ bytes: [UInt8]) throws {
        decoded += bytes.count
        if limit > 0, decoded > limit { throw TooLarge(limit: limit) }
        ready += try reader.feed(bytes)
    }
}
