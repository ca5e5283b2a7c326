import Mink

/// One projection's state (HTTP-API.md section 8): an element of
/// `GET /v1/projections` and the body of `GET /v1/projections/{name}`.
public struct ProjectionStatusBody: Codable, Hashable, Sendable {
    /// When a projection runs.
    public enum Mode: String, Codable, Hashable, Sendable, CaseIterable {
        /// After commit, in the background.
        case async
        /// In the append's transaction.
        case inline
    }

    /// What a projection is doing.
    public enum Status: String, Codable, Hashable, Sendable, CaseIterable {
        /// Following the log.
        case running
        /// Paused by an operator.
        case paused
        /// Rebuilding into a new copy of its read model.
        case rebuilding
        /// Stopped by an error (see `lastError`).
        case faulted
        /// Not running (shutting down).
        case stopped
    }

    /// The projection's name.
    public var name: String
    /// Its mode.
    public var mode: Mode
    /// Its status.
    public var status: Status
    /// The last global position it has processed.
    public var checkpoint: Int64
    /// The tenant's head position when the status was taken.
    public var head: Int64
    /// `head - checkpoint`.
    public var lag: Int64
    /// The last error, or nil.
    public var lastError: String?
    /// minkd's addition: whether the answering process runs the projection (`nil` from a server
    /// that does not say).
    public var runningHere: Bool?

    /// Creates the body; `lag` defaults to `head - checkpoint`.
    public init(
        name: String, mode: Mode, status: Status, checkpoint: Int64, head: Int64, lag: Int64? = nil, lastError: String? = nil,
        runningHere: Bool? = nil
    ) {
        self.runningHere = runningHere
        self.name = name
        self.mode = mode
        self.status = status
        self.checkpoint = checkpoint
        self.head = head
        self.lag = lag ?? max(0, head - checkpoint)
        self.lastError = lastError
    }

    private enum CodingKeys: String, CodingKey { case name, mode, status, checkpoint, head, lag, lastError, runningHere }

    /// Encodes the body with an explicit `"lastError": null`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(mode, forKey: .mode)
        try container.encode(status, forKey: .status)
        try container.encode(checkpoint, forKey: .checkpoint)
        try container.encode(head, forKey: .head)
        try container.encode(lag, forKey: .lag)
        try container.encode(lastError, forKey: .lastError)
        try container.encodeIfPresent(runningHere, forKey: .runningHere)
    }
}

extension ProjectionStatusBody: JSONWritable {
    /// Writes the body in the order of HTTP-API.md section 8.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("name")
        writer.string(name)
        writer.key("mode")
        writer.string(mode.rawValue)
        writer.key("status")
        writer.string(status.rawValue)
        writer.key("checkpoint")
        writer.int(checkpoint)
        writer.key("head")
        writer.int(head)
        writer.key("lag")
        writer.int(lag)
        writer.key("lastError")
        writer.string(lastError)
        if let runningHere {
            writer.key("runningHere")
            writer.bool(runningHere)
        }
        writer.endObject()
    }
}

/// The body of `GET /v1/projections`.
public struct ProjectionListBody: Codable, Hashable, Sendable, JSONWritable {
    /// Every projection.
    public var projections: [ProjectionStatusBody]

    /// Creates the body.
    public init(projections: [ProjectionStatusBody]) {
        self.projections = projections
    }

    /// Writes `{"projections":[…]}`.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("projections")
        writer.beginArray()
        for projection in projections { projection.write(to: &writer) }
        writer.endArray()
        writer.endObject()
    }
}
