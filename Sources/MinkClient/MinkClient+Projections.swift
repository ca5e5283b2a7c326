import Foundation
import Mink
import MinkWire

/// A projection's state as the server reports it (`GET /v1/projections`).
public struct ProjectionStatus: Sendable, Hashable {
    /// The projection's name.
    public var name: String
    /// Inline or async.
    public var mode: ProjectionEngine.Mode
    /// What it is doing: running, paused, rebuilding, faulted or stopped.
    public var state: ProjectionEngine.State
    /// The global position up to which it has applied events.
    public var checkpoint: UInt64
    /// The tenant's head position when the status was taken.
    public var head: UInt64
    /// `head - checkpoint`.
    public var lag: UInt64
    /// The last error, if any.
    public var lastError: String?
    /// Whether the answering minkd process runs the projection: `false` when another process
    /// sharing its PostgreSQL database holds the lease, and the status is what that one stored
    /// (`nil` from a server that does not say).
    public var runningHere: Bool?

    /// Creates a status.
    public init(
        name: String, mode: ProjectionEngine.Mode, state: ProjectionEngine.State, checkpoint: UInt64, head: UInt64, lag: UInt64,
        lastError: String? = nil, runningHere: Bool? = nil
    ) {
        self.runningHere = runningHere
        self.name = name
        self.mode = mode
        self.state = state
        self.checkpoint = checkpoint
        self.head = head
        self.lag = lag
        self.lastError = lastError
    }

    init(_ body: ProjectionStatusBody) {
        self.init(
            name: body.name, mode: ProjectionEngine.Mode(rawValue: body.mode.rawValue) ?? .async,
            state: ProjectionEngine.State(rawValue: body.status.rawValue) ?? .stopped,
            checkpoint: UInt64(clamping: body.checkpoint), head: UInt64(clamping: body.head), lag: UInt64(clamping: body.lag),
            lastError: body.lastError, runningHere: body.runningHere
        )
    }
}

extension MinkClient {
    /// Every projection the server runs for the tenant (`GET /v1/projections`).
    public func projections() async throws -> [ProjectionStatus] {
        try await fetchDecodable(ProjectionListBody.self, "GET", target(["v1", "projections"]), idempotent: true)
            .projections.map(ProjectionStatus.init)
    }

    /// One projection's status (`GET /v1/projections/{name}`).
    /// - Throws: `.projectionNotFound`.
    public func projection(_ name: String) async throws -> ProjectionStatus {
        do {
            return ProjectionStatus(
                try await fetchDecodable(ProjectionStatusBody.self, "GET", target(["v1", "projections", PathEncoding.encode(name)]), idempotent: true)
            )
        } catch let error as MinkError where error.code == .projectionNotFound {
            throw Self.projectionNotFound(error, name: name)
        }
    }

    /// Pauses an async projection after its current batch (`POST .../pause`; role `admin`).
    /// - Throws: `.projectionNotFound`.
    public func pauseProjection(_ name: String) async throws {
        try await control(name, "pause", idempotent: true)
    }

    /// Resumes a paused or faulted projection (`POST .../resume`; role `admin`).
    /// - Throws: `.projectionNotFound`.
    public func resumeProjection(_ name: String) async throws {
        try await control(name, "resume", idempotent: true)
    }

    /// Starts rebuilding a projection from position 0 (`POST .../rebuild`, answered `202`; role
    /// `admin`): reads keep answering from the old read model until the new one has caught up.
    /// Not retried automatically (a second rebuild would start over).
    /// - Throws: `.projectionNotFound`.
    public func rebuildProjection(_ name: String) async throws {
        try await control(name, "rebuild", idempotent: false)
    }

    private func control(_ name: String, _ action: String, idempotent: Bool) async throws {
        do {
            _ = try await send("POST", target(["v1", "projections", PathEncoding.encode(name), action]), body: Array("{}".utf8), idempotent: idempotent)
        } catch let error as MinkError where error.code == .projectionNotFound {
            throw Self.projectionNotFound(error, name: name)
        }
    }

    /// The server's `projection_not_found` with the name the caller asked for (made whole, not
    /// patched: the server's own `details.name` wins when it sent one).
    private static func projectionNotFound(_ error: MinkError, name: String) -> MinkError {
        MinkError(
            .projectionNotFound, error.message, projectionName: error.projectionName ?? name,
            isTransient: error.isTransient, underlying: error.underlying
        )
    }
}
