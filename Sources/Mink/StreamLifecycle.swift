import Foundation

/// The retention rules of one stream (HTTP-API.md section 5, "Retention"): every rule is optional;
/// an event is kept when it passes all of them.
public struct StreamRetention: Sendable, Hashable {
    /// Keep only the newest `maxCount` events.
    public var maxCount: Int64?
    /// Keep only the events committed in the last `maxAgeSeconds` seconds.
    public var maxAgeSeconds: Int64?
    /// Keep only the events with a version of at least `truncateBefore`.
    public var truncateBefore: Int64?

    /// Creates rules; `nil` means no rule.
    public init(maxCount: Int64? = nil, maxAgeSeconds: Int64? = nil, truncateBefore: Int64? = nil) {
        self.maxCount = maxCount
        self.maxAgeSeconds = maxAgeSeconds
        self.truncateBefore = truncateBefore
    }

    /// Whether no rule is set.
    public var isEmpty: Bool { maxCount == nil && maxAgeSeconds == nil && truncateBefore == nil }

    /// The longest `maxAgeSeconds`: 1,000 years (longer keeps everything anyway; the storages
    /// count ages in microseconds, and PostgreSQL's timestamps start in 4713 BC).
    public static let maxAgeSecondsLimit: Int64 = 31_557_600_000

    /// Checks the rules: each at least 1, `maxAgeSeconds` at most ``maxAgeSecondsLimit``.
    /// - Throws: `.validationFailed` naming the field.
    public func validate() throws {
        if let v = maxCount, v < 1 { throw MinkError.validation("maxCount must be at least 1") }
        if let v = maxAgeSeconds, v < 1 { throw MinkError.validation("maxAgeSeconds must be at least 1") }
        if let v = maxAgeSeconds, v > Self.maxAgeSecondsLimit {
            throw MinkError.validation("maxAgeSeconds must be at most \(Self.maxAgeSecondsLimit) (1,000 years)")
        }
        if let v = truncateBefore, v < 1 { throw MinkError.validation("truncateBefore must be at least 1") }
    }

    /// The oldest commit time `maxAgeSeconds` keeps, in microseconds since 1970, at `nowMicros`;
    /// `nil` without that rule, or when the cutoff is before the year 1 (a rule stored before
    /// ``maxAgeSecondsLimit`` was checked): nothing is that old.
    public func cutoffMicroseconds(nowMicros: Int64) -> Int64? {
        guard let age = maxAgeSeconds else { return nil }
        let (micros, overflow) = age.multipliedReportingOverflow(by: 1_000_000)
        if overflow { return nil }
        let (cutoff, under) = nowMicros.subtractingReportingOverflow(micros)
        return under || cutoff < Self.yearOneMicroseconds ? nil : cutoff
    }

    /// 0001-01-01T00:00:00Z in microseconds since 1970.
    static let yearOneMicroseconds: Int64 = -62_135_596_800_000_000

    /// The lowest version the version-based rules keep in a stream at `version` (1 when none).
    public func firstKeptVersion(streamVersion version: Int64) -> Int64 {
        var first: Int64 = 1
        if let tb = truncateBefore { first = max(first, tb) }
        if let n = maxCount { first = max(first, version - n + 1) }
        return first
    }

    /// The oldest commit time `maxAgeSeconds` keeps at `now`, or `nil` without that rule.
    public func cutoff(now: Date) -> Date? {
        maxAgeSeconds.map { now.addingTimeInterval(-Double($0)) }
    }

    /// Whether an event of a stream at `streamVersion` is kept at `now`.
    public func keeps(_ event: Event, streamVersion: Int64, now: Date) -> Bool {
        if event.version < firstKeptVersion(streamVersion: streamVersion) { return false }
        if let cutoff = cutoff(now: now), event.timestamp < cutoff { return false }
        return true
    }
}

/// What a stream's retention rules keep at one moment: the first kept version (of the
/// version-based rules, for the stream's version then) and the age cutoff. A read from storage
/// computes it once per page, as a load does (HTTP-API.md section 5, "Retention").
public struct RetentionWindow: Sendable, Hashable {
    /// The rules.
    public var rules: StreamRetention
    /// The stream's version the window was computed for (0 when it had no stored event).
    public var streamVersion: Int64
    /// The lowest version kept by `maxCount` and `truncateBefore`.
    public var firstKeptVersion: Int64
    /// The oldest commit time kept by `maxAgeSeconds`, or `nil` without that rule.
    public var cutoff: Date?

    /// The window of `rules` for a stream at `streamVersion`, at `now`.
    public init(_ rules: StreamRetention, streamVersion: Int64, now: Date) {
        self.rules = rules
        self.streamVersion = streamVersion
        firstKeptVersion = rules.firstKeptVersion(streamVersion: streamVersion)
        cutoff = rules.cutoff(now: now)
    }

    /// Whether an event of the stream is kept.
    public func keeps(_ event: Event) -> Bool {
        event.version >= firstKeptVersion && (cutoff.map { event.timestamp >= $0 } ?? true)
    }

    /// The stream's window now, or `nil` when it has no rules (or the adapter has no life
    /// cycle): then everything stored is kept.
    public static func current(of streamID: String, adapter: any EventStoreAdapter, now: Date = Date()) async throws -> RetentionWindow? {
        guard let lifecycle = adapter as? any StreamLifecycleAdapter,
            let rules = try await lifecycle.streamRetention(streamID), !rules.isEmpty
        else { return nil }
        let version = try await adapter.streamInfo(streamID)?.version ?? 0
        return RetentionWindow(rules, streamVersion: version, now: now)
    }
}

/// What a stream deletion did (HTTP-API.md section 5, "Delete").
public struct StreamDeletion: Sendable, Hashable {
    /// The deleted stream.
    public var streamID: String
    /// How many stored events were removed.
    public var deletedEvents: Int64
    /// The stream's version when it was deleted (kept: the next append continues after it).
    public var lastVersion: Int64
    /// Whether a tombstone was left.
    public var hard: Bool
    /// The global position of the `$StreamDeleted` record in `$deletions`.
    public var position: UInt64

    /// Creates a deletion result.
    public init(streamID: String, deletedEvents: Int64, lastVersion: Int64, hard: Bool, position: UInt64) {
        self.streamID = streamID
        self.deletedEvents = deletedEvents
        self.lastVersion = lastVersion
        self.hard = hard
        self.position = position
    }
}

/// Which streams a listing returns: bytewise ascending by ID after `after` (exclusive).
public struct StreamListQuery: Sendable, Hashable {
    /// Only streams of this category.
    public var category: String?
    /// Only streams whose ID starts with this prefix.
    public var prefix: String?
    /// Only streams whose ID sorts bytewise after this one.
    public var after: String?
    /// At most this many streams.
    public var limit: Int

    /// Creates a listing query.
    public init(category: String? = nil, prefix: String? = nil, after: String? = nil, limit: Int = 100) {
        self.category = category
        self.prefix = prefix
        self.after = after
        self.limit = limit
    }

    /// Whether no stream can pass the filters whatever is stored: a category is the part of an
    /// ID before its first `-`, so a category filter holding a `-` matches nothing (an adapter's
    /// key range for it — the ID itself or `category-…` — would let `order-1-x` through for
    /// `order-1`).
    public var matchesNothing: Bool {
        category?.utf8.contains(UInt8(ascii: "-")) == true
    }

    /// Whether a stream ID passes the filters and comes after `after` (the in-memory rule every
    /// adapter's SQL reproduces).
    public func matches(_ streamID: String) -> Bool {
        if let after, !StreamID.bytewiseLess(after, streamID) { return false }
        if let category, StreamID.category(of: streamID) != category { return false }
        if let prefix, !streamID.utf8.starts(with: prefix.utf8) { return false }
        return true
    }
}

extension StreamID {
    /// The system stream every deletion is recorded in.
    public static let deletions = "$deletions"
    /// The type of the record of a deletion in ``deletions``.
    public static let streamDeletedType = "$StreamDeleted"

    /// Whether an ID (or an event type) is reserved for the server: it starts with `$`.
    public static func isReserved(_ name: String) -> Bool { name.utf8.first == UInt8(ascii: "$") }

    /// Bytewise (UTF-8) order of stream IDs, the listing's order on every adapter (PostgreSQL's
    /// `COLLATE "C"`, SQLite's `BINARY`).
    public static func bytewiseLess(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }

    /// The smallest string greater than every string starting with `prefix`, or `nil` when there
    /// is none (the prefix is all `0xFF`… which UTF-8 never is): a prefix becomes the index range
    /// `prefix <= id < upperBound` instead of a `LIKE`.
    public static func prefixUpperBound(_ prefix: String) -> [UInt8]? {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last {
            if last < 0xFF {
                bytes[bytes.count - 1] = last + 1
                return bytes
            }
            bytes.removeLast()
        }
        return nil
    }
}

/// The `$StreamDeleted` record of a deletion.
public enum StreamDeletedRecord {
    /// The record's data: `{"streamId","lastVersion","deletedEvents","hard"}`.
    public static func data(streamID: String, lastVersion: Int64, deletedEvents: Int64, hard: Bool) -> Data {
        var w = JSONWriter()
        w.beginObject()
        w.key("streamId"); w.string(streamID)
        w.key("lastVersion"); w.int(lastVersion)
        w.key("deletedEvents"); w.int(deletedEvents)
        w.key("hard"); w.bool(hard)
        w.endObject()
        return Data(w.bytes)
    }

    /// The append of the record to `$deletions`, as adapters run it inside the deletion's
    /// transaction (any expected version: `$deletions` only grows).
    public static func request(streamID: String, lastVersion: Int64, deletedEvents: Int64, hard: Bool, tenantID: String?) -> AppendRequest {
        var metadata = Metadata()
        metadata.tenantID = tenantID
        let event = EventData(
            id: UUID().lowercasedText, type: StreamID.streamDeletedType,
            data: data(streamID: streamID, lastVersion: lastVersion, deletedEvents: deletedEvents, hard: hard), metadata: metadata
        )
        return AppendRequest(streamID: StreamID.deletions, events: [event], expectedVersion: .any, hasFreshIDs: true)
    }
}

/// Storage for the life cycle of streams: listing, deletion, tombstones and retention
/// (HTTP-API.md section 5). InMemoryStorage, SQLiteStorage and PostgresStorage implement it
/// under every tenancy strategy; ``EventStore`` finds it on its adapter.
///
/// Guarantees, on top of ``EventStoreAdapter``'s:
/// - a deletion removes the stream's events, its snapshot and (with the events) its idempotency
///   records, keeps its version counter, and appends one `$StreamDeleted` record to `$deletions`,
///   all in one transaction, serialised with appends (the record's position is the next one);
/// - an append to a soft-deleted stream sees version 0 for its check and continues at the deleted
///   version + 1; an append to a tombstoned stream fails with `.streamDeleted`;
/// - a position is never reused: the scavenger never removes the tenant's last event, whose
///   position the next append counts from.
public protocol StreamLifecycleAdapter: Sendable {
    /// Up to `query.limit` streams with at least one stored event, bytewise ascending by ID.
    func listStreams(_ query: StreamListQuery) async throws -> [StreamInfo]

    /// Deletes a stream (soft, or hard with a tombstone) and records it in `$deletions`; `hook`
    /// (inline projections) runs over the record inside the same transaction, and its failure
    /// rolls the deletion back.
    /// - Throws: `.streamNotFound` (missing or already soft-deleted), `.streamDeleted`
    ///   (tombstoned), `.concurrencyConflict` (nothing deleted), or what the hook threw.
    func deleteStream(_ streamID: String, expectedVersion: ExpectedVersion, hard: Bool, hook: AppendTransactionHook?) async throws -> StreamDeletion

    /// Whether the stream carries a tombstone.
    func isTombstoned(_ streamID: String) async throws -> Bool

    /// The stream's retention rules (`nil` when none are stored).
    func streamRetention(_ streamID: String) async throws -> StreamRetention?

    /// The retention rules of those of `streamIDs` that have some (a page of a listing): one
    /// query where the adapter can (the default asks ``streamRetention(_:)`` per stream).
    func streamRetentions(_ streamIDs: [String]) async throws -> [String: StreamRetention]

    /// A page of the stream as ``EventStore`` reads it under retention rules, in one storage call
    /// where the adapter can (the default makes the calls one by one): the stream's rules; only
    /// when it has none, the page (as `readStream`); and only when that page is empty, whether the
    /// stream carries a tombstone.
    func readStreamForRetention(_ streamID: String, from version: Int64, limit: Int, direction: ReadDirection) async throws
        -> RetentionAwareRead

    /// The stream's info (as `streamInfo`) with its retention rules, or — when there is no info —
    /// whether it carries a tombstone; in one storage call where the adapter can.
    func streamInfoForRetention(_ streamID: String) async throws -> RetentionAwareInfo

    /// ``streamInfoForRetention(_:)`` and, when the stream exists (its info is there) and has no
    /// rules, a page of it (as `readStream`), in one storage call where the adapter can — a read
    /// of a stream with its version (`GET /v1/streams/{id}`) in one round trip.
    func readStreamWithInfo(_ streamID: String, from version: Int64, limit: Int, direction: ReadDirection) async throws
        -> RetentionAwarePage

    /// The stream's newest snapshot (as ``SnapshotAdapter/loadSnapshot(streamID:)``) and whether
    /// the stream carries a tombstone (then there is no snapshot: a hard deletion removes it), in
    /// one storage call where the adapter can — `GET /v1/streams/{id}/snapshot` answers `410` for
    /// the tombstone.
    func snapshotUnlessTombstoned(streamID: String) async throws -> (snapshot: Snapshot?, tombstoned: Bool)

    /// Replaces the stream's retention rules (empty rules remove them).
    func setStreamRetention(_ streamID: String, _ retention: StreamRetention) async throws

    /// Removes up to `limit` stored events that the retention rules exclude at `now`, in one
    /// short write transaction; returns how many were removed (0: nothing left to do).
    func scavengeBatch(now: Date, limit: Int) async throws -> Int

    /// Re-creates the effect of an imported `$StreamDeleted` record: the stream's version counter
    /// becomes at least `lastVersion` (with no events), and `hard` leaves a tombstone. For
    /// export/import, which copies `$deletions` verbatim.
    func applyImportedDeletion(streamID: String, lastVersion: Int64, hard: Bool) async throws
}

/// What ``StreamLifecycleAdapter/readStreamForRetention(_:from:limit:direction:)`` found.
public struct RetentionAwareRead: Sendable, Equatable {
    /// The stream's rules, when it has some (not empty): then the page was not read.
    public var retention: StreamRetention?
    /// The page, when the stream has no rules.
    public var events: [Event]
    /// Whether the stream carries a tombstone (looked up only when the page came back empty).
    public var tombstoned: Bool

    public init(retention: StreamRetention?, events: [Event], tombstoned: Bool) {
        self.retention = retention
        self.events = events
        self.tombstoned = tombstoned
    }
}

/// What ``StreamLifecycleAdapter/streamInfoForRetention(_:)`` found.
public struct RetentionAwareInfo: Sendable, Equatable {
    /// The stream's info as stored (`nil`: missing or soft-deleted).
    public var info: StreamInfo?
    /// The stream's rules (looked up only when there is info; `nil` when it has none).
    public var retention: StreamRetention?
    /// Whether the stream carries a tombstone (looked up only when there is no info).
    public var tombstoned: Bool

    public init(info: StreamInfo?, retention: StreamRetention?, tombstoned: Bool) {
        self.info = info
        self.retention = retention
        self.tombstoned = tombstoned
    }
}

/// What ``StreamLifecycleAdapter/readStreamWithInfo(_:from:limit:direction:)`` found.
public struct RetentionAwarePage: Sendable, Equatable {
    /// The stream's info, rules and tombstone, as ``StreamLifecycleAdapter/streamInfoForRetention(_:)``.
    public var info: RetentionAwareInfo
    /// The page, when there is info and no rules (empty otherwise).
    public var events: [Event]

    public init(info: RetentionAwareInfo, events: [Event]) {
        self.info = info
        self.events = events
    }
}

extension StreamLifecycleAdapter where Self: EventStoreAdapter {
    /// The calls one by one.
    public func readStreamForRetention(_ streamID: String, from version: Int64, limit: Int, direction: ReadDirection) async throws
        -> RetentionAwareRead
    {
        if let rules = try await streamRetention(streamID), !rules.isEmpty {
            return RetentionAwareRead(retention: rules, events: [], tombstoned: false)
        }
        let events = try await readStream(streamID, from: version, limit: limit, direction: direction)
        return RetentionAwareRead(retention: nil, events: events, tombstoned: events.isEmpty ? try await isTombstoned(streamID) : false)
    }

    /// The calls one by one.
    public func readStreamWithInfo(_ streamID: String, from version: Int64, limit: Int, direction: ReadDirection) async throws
        -> RetentionAwarePage
    {
        let info = try await streamInfoForRetention(streamID)
        guard info.info != nil, info.retention == nil else { return RetentionAwarePage(info: info, events: []) }
        return RetentionAwarePage(info: info, events: try await readStream(streamID, from: version, limit: limit, direction: direction))
    }

    /// The calls one by one (an adapter that stores no snapshots has none).
    public func snapshotUnlessTombstoned(streamID: String) async throws -> (snapshot: Snapshot?, tombstoned: Bool) {
        if try await isTombstoned(streamID) { return (nil, true) }
        return (try await (self as? any SnapshotAdapter)?.loadSnapshot(streamID: streamID), false)
    }

    /// The calls one by one.
    public func streamInfoForRetention(_ streamID: String) async throws -> RetentionAwareInfo {
        guard let info = try await streamInfo(streamID) else {
            return RetentionAwareInfo(info: nil, retention: nil, tombstoned: try await isTombstoned(streamID))
        }
        let rules = try await streamRetention(streamID)
        return RetentionAwareInfo(info: info, retention: rules?.isEmpty == false ? rules : nil, tombstoned: false)
    }
}

extension StreamLifecycleAdapter {
    /// One ``streamRetention(_:)`` per stream.
    public func streamRetentions(_ streamIDs: [String]) async throws -> [String: StreamRetention] {
        var rules: [String: StreamRetention] = [:]
        for id in streamIDs {
            if let r = try await streamRetention(id), !r.isEmpty { rules[id] = r }
        }
        return rules
    }
}
