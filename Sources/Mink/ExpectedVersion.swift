/// The optimistic-concurrency condition of an append (seed: `ExpectVersion(v)`).
public enum ExpectedVersion: Sendable, Hashable, CustomStringConvertible {
    /// No check.
    case any
    /// The stream must not exist yet (same as `.exact(0)`).
    case noStream
    /// The stream must exist (version ≥ 1); on a missing stream the append fails with `.streamNotFound`.
    case streamExists
    /// The stream's current version must be exactly this (0 = the stream does not exist).
    case exact(Int64)

    /// Checks the condition against a stream's current version.
    /// - Throws: `.concurrencyConflict` with the details, or `.streamNotFound` for `.streamExists`.
    public func check(streamID: String, currentVersion: Int64) throws {
        switch self {
        case .any: return
        case .noStream:
            if currentVersion != 0 { throw MinkError.concurrencyConflict(streamID: streamID, expected: 0, actual: currentVersion) }
        case .streamExists:
            if currentVersion == 0 { throw MinkError.streamNotFound(streamID) }
        case .exact(let v):
            if currentVersion != v { throw MinkError.concurrencyConflict(streamID: streamID, expected: v, actual: currentVersion) }
        }
    }

    public var description: String {
        switch self {
        case .any: return "any"
        case .noStream: return "no_stream"
        case .streamExists: return "stream_exists"
        case .exact(let v): return String(v)
        }
    }
}
