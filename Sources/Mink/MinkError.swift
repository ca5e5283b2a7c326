/// The one error type of the Mink library.
///
/// Callers switch over `code` (the seed's sentinel errors) and read the details from the
/// properties, e.g. `streamID`, `expectedVersion` and `actualVersion` of a concurrency conflict:
///
/// ```swift
/// do { try await store.append("order-1", [ItemAdded(...)], expectedVersion: .exact(3)) }
/// catch let error as MinkError where error.code == .concurrencyConflict {
///     print(error.streamID!, error.expectedVersion!, error.actualVersion!)
/// }
/// ```
///
/// An error that a storage failure caused keeps that failure in ``underlying`` (e.g. the SQLite
/// adapter's `SQLiteError` with its extended result code, the PostgreSQL adapter's
/// `PostgresError` with its SQLSTATE), as postgres-nio's `PSQLError` keeps `underlying`: the
/// code is classified by the adapter, and the cause stays readable for logs and diagnosis.
/// Every property is set when the error is created.
public struct MinkError: Error, Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What went wrong, as a value callers can switch over.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The stream does not exist (seed: `ErrStreamNotFound`).
        public static let streamNotFound = Code(rawValue: "stream_not_found")
        /// The expected version did not match (seed: `ErrConcurrencyConflict`, `ConcurrencyError`).
        public static let concurrencyConflict = Code(rawValue: "concurrency_conflict")
        /// The stream was hard-deleted: a tombstone answers every read, append and subscription.
        public static let streamDeleted = Code(rawValue: "stream_deleted")
        /// An event ID was reused for a different event in the stream.
        public static let duplicateEventID = Code(rawValue: "duplicate_event_id")
        /// No such event (seed: `ErrEventNotFound`).
        public static let eventNotFound = Code(rawValue: "event_not_found")
        /// No projection of that name (seed: `ErrProjectionNotFound`).
        public static let projectionNotFound = Code(rawValue: "projection_not_found")
        /// Encoding or decoding an event or document failed (seed: `ErrSerializationFailed`).
        public static let serializationFailed = Code(rawValue: "serialization_failed")
        /// The adapter cannot do what was asked (seed: `ErrAdapterNotSupported`).
        public static let adapterNotSupported = Code(rawValue: "adapter_not_supported")
        /// An event type name has no registered Swift type.
        public static let eventTypeNotRegistered = Code(rawValue: "event_type_not_registered")
        /// The input breaks a rule (empty stream ID, no events, empty event type, size limit, ...).
        public static let validationFailed = Code(rawValue: "validation_failed")
        /// A read-model query with an invalid field path or operator.
        public static let invalidQuery = Code(rawValue: "invalid_query")
        /// A tenant ID that does not match the tenant ID pattern.
        public static let invalidTenant = Code(rawValue: "invalid_tenant")
        /// A read-model document was not found.
        public static let notFound = Code(rawValue: "not_found")
        /// Storage is unreachable or busy; retrying later may succeed (transient).
        public static let unavailable = Code(rawValue: "unavailable")
        /// A projection failed while handling an event.
        public static let projectionFailed = Code(rawValue: "projection_failed")
        /// The operation was cancelled or the component is shut down.
        public static let cancelled = Code(rawValue: "cancelled")
        /// A projection's lease moved to another holder: the work done under it was rolled back.
        public static let leaseLost = Code(rawValue: "lease_lost")
        /// A bug or unexpected storage failure.
        public static let internalError = Code(rawValue: "internal")
    }

    /// What went wrong.
    public var code: Code
    /// A sentence safe to show a user; never contains SQL or another tenant's data.
    public var message: String
    /// The stream concerned, when there is one.
    public var streamID: String?
    /// The expected version of a failed concurrency check.
    public var expectedVersion: Int64?
    /// The actual stream version found by a failed concurrency check.
    public var actualVersion: Int64?
    /// The projection concerned, when there is one.
    public var projectionName: String?
    /// The global position of the event concerned, when there is one (e.g. a poison event).
    public var position: UInt64?
    /// Whether retrying the same operation may succeed (storage down, busy, timeouts).
    public var isTransient: Bool
    /// For an append that failed transiently after it may have reached the server (a remote
    /// client's retries ran out): the IDs its events carried, in order. The append may or may not
    /// have been committed; sending the same events again with these IDs is safe (a committed
    /// append is answered with its original result, an uncommitted one is written once), where
    /// new IDs could write the events twice. Not part of equality.
    public var eventIDs: [String]?
    /// The failure this error was made from, when there is one: a storage adapter's own error
    /// (with its SQLSTATE or SQLite result code), or what a decoder threw. Never shown to an API
    /// client; not part of equality (two errors are equal when code, message and details are).
    /// (`Error` refines `Sendable`, so the error stays `Sendable`.)
    public var underlying: (any Error)?

    /// Creates an error.
    /// - Parameters:
    ///   - isTransient: whether a retry may succeed; by default only `.unavailable` is transient.
    ///   - underlying: the failure that caused this one, kept for diagnosis.
    public init(
        _ code: Code, _ message: String, streamID: String? = nil, expectedVersion: Int64? = nil, actualVersion: Int64? = nil,
        projectionName: String? = nil, position: UInt64? = nil, isTransient: Bool? = nil, underlying: (any Error)? = nil
    ) {
        self.code = code
        self.message = message
        self.streamID = streamID
        self.expectedVersion = expectedVersion
        self.actualVersion = actualVersion
        self.projectionName = projectionName
        self.position = position
        self.isTransient = isTransient ?? (code == .unavailable)
        self.underlying = underlying
    }

    /// The seed's `ConcurrencyError`: a failed optimistic-concurrency check with its details.
    public static func concurrencyConflict(streamID: String, expected: Int64, actual: Int64) -> MinkError {
        MinkError(
            .concurrencyConflict,
            "concurrency conflict on stream \(streamID): expected \(expected), got \(actual)",
            streamID: streamID, expectedVersion: expected, actualVersion: actual
        )
    }

    /// The stream does not exist.
    public static func streamNotFound(_ streamID: String) -> MinkError {
        MinkError(.streamNotFound, "stream not found: \(streamID)", streamID: streamID)
    }

    /// The stream was hard-deleted (a tombstone).
    public static func streamDeleted(_ streamID: String) -> MinkError {
        MinkError(.streamDeleted, "stream deleted: \(streamID) was hard-deleted", streamID: streamID)
    }

    /// The projection does not exist.
    public static func projectionNotFound(_ name: String) -> MinkError {
        MinkError(.projectionNotFound, "projection not found: \(name)", projectionName: name)
    }

    /// The lease of a projection is no longer this holder's (its fencing token is outdated).
    public static func leaseLost(_ projection: String) -> MinkError {
        MinkError(.leaseLost, "the lease of projection \(projection) was taken over by another holder", projectionName: projection)
    }

    /// Validation of input failed.
    public static func validation(_ message: String) -> MinkError { MinkError(.validationFailed, message) }

    /// Storage is unreachable; the caller may retry.
    public static func unavailable(_ message: String) -> MinkError { MinkError(.unavailable, message, isTransient: true) }

    public var description: String { "\(code): \(message)" }

    /// The description, followed by the underlying error when there is one (for logs).
    public var debugDescription: String {
        guard let underlying else { return description }
        return "\(description) (caused by \(String(reflecting: underlying)))"
    }

    public static func == (lhs: MinkError, rhs: MinkError) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message && lhs.streamID == rhs.streamID
            && lhs.expectedVersion == rhs.expectedVersion && lhs.actualVersion == rhs.actualVersion
            && lhs.projectionName == rhs.projectionName && lhs.position == rhs.position && lhs.isTransient == rhs.isTransient
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
        hasher.combine(message)
        hasher.combine(streamID)
        hasher.combine(expectedVersion)
        hasher.combine(actualVersion)
        hasher.combine(projectionName)
        hasher.combine(position)
        hasher.combine(isTransient)
    }
}
