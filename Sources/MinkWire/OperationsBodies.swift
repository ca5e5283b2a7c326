import Mink

/// The body of `GET /healthz`: `{"status": "ok"}` (HTTP-API.md section 10).
public struct HealthBody: Codable, Hashable, Sendable, JSONWritable {
    /// `ok` while the process serves.
    public var status: String

    /// Creates the body.
    public init(status: String = "ok") {
        self.status = status
    }

    /// Writes `{"status":"…"}`.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("status")
        writer.string(status)
        writer.endObject()
    }
}

/// The body of `GET /readyz`: `{"status": "ready"}`, or
/// `{"status": "unavailable", "reason": "..."}` with `503`.
public struct ReadyBody: Codable, Hashable, Sendable, JSONWritable {
    /// `ready` or `unavailable`.
    public var status: String
    /// Why the server is not ready; nil when it is.
    public var reason: String?

    /// The ready body.
    public static let ready = ReadyBody(status: "ready")

    /// The not-ready body with its reason.
    public static func unavailable(_ reason: String) -> ReadyBody {
        ReadyBody(status: "unavailable", reason: reason)
    }

    /// Creates the body.
    public init(status: String, reason: String? = nil) {
        self.status = status
        self.reason = reason
    }

    /// Writes the body; `reason` only when present. A body that is not `ready` (the `503`) also
    /// carries the error shape every error response has (HTTP-API.md section 3): `error` with
    /// code `unavailable`, the reason as its message and in its details, so a client that reads
    /// every non-2xx body as an error reads this one too.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("status")
        writer.string(status)
        if let reason {
            writer.key("reason")
            writer.string(reason)
        }
        if status != "ready" {
            let message = reason.map { "not ready: \($0)" } ?? "not ready"
            writer.key("error")
            writer.beginObject()
            writer.key("code")
            writer.string(ErrorCode.unavailable.rawValue)
            writer.key("message")
            writer.string(message)
            writer.key("details")
            JSONValue.object(reason.map { ["reason": .string($0)] } ?? [:]).write(to: &writer)
            writer.endObject()
        }
        writer.endObject()
    }
}

/// The body of `GET /v1/info` (HTTP-API.md section 10).
public struct InfoBody: Codable, Hashable, Sendable, JSONWritable {
    /// The limits a client should respect.
    public struct Limits: Codable, Hashable, Sendable {
        /// Largest request body (decompressed), in bytes.
        public var maxBodyBytes: Int
        /// Most events in one append.
        public var maxEventsPerAppend: Int
        /// Largest `data` of one event, in bytes.
        public var maxEventBytes: Int
        /// Most open connections.
        public var maxConnections: Int
        /// Live buffer of one subscriber, in events.
        public var subscriberBuffer: Int

        /// Creates the limits; the defaults are the API's.
        public init(
            maxBodyBytes: Int = 4_194_304, maxEventsPerAppend: Int = 1000, maxEventBytes: Int = 1_048_576,
            maxConnections: Int = 10_000, subscriberBuffer: Int = 10_000
        ) {
            self.maxBodyBytes = maxBodyBytes
            self.maxEventsPerAppend = maxEventsPerAppend
            self.maxEventBytes = maxEventBytes
            self.maxConnections = maxConnections
            self.subscriberBuffer = subscriberBuffer
        }
    }

    /// The minkd version.
    public var version: String
    /// The storage kind: `sqlite`, `postgres` or `memory`.
    public var storage: String
    /// The tenancy strategy: `shared`, `schema` or `database`.
    public var tenancy: String
    /// Whole seconds since the process started.
    public var uptimeSeconds: Int64
    /// The configured limits.
    public var limits: Limits

    /// Creates the body.
    public init(version: String, storage: String, tenancy: String, uptimeSeconds: Int64, limits: Limits) {
        self.version = version
        self.storage = storage
        self.tenancy = tenancy
        self.uptimeSeconds = uptimeSeconds
        self.limits = limits
    }

    /// Writes the body.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("version")
        writer.string(version)
        writer.key("storage")
        writer.string(storage)
        writer.key("tenancy")
        writer.string(tenancy)
        writer.key("uptimeSeconds")
        writer.int(uptimeSeconds)
        writer.key("limits")
        writer.beginObject()
        writer.key("maxBodyBytes")
        writer.int(limits.maxBodyBytes)
        writer.key("maxEventsPerAppend")
        writer.int(limits.maxEventsPerAppend)
        writer.key("maxEventBytes")
        writer.int(limits.maxEventBytes)
        writer.key("maxConnections")
        writer.int(limits.maxConnections)
        writer.key("subscriberBuffer")
        writer.int(limits.subscriberBuffer)
        writer.endObject()
        writer.endObject()
    }
}
