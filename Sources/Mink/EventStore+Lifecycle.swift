import Foundation

/// Listing, deletion and retention of streams (HTTP-API.md section 5), on adapters that conform
/// to ``StreamLifecycleAdapter`` (the three of this package do).
extension EventStore {
    /// The adapter's life-cycle side.
    /// - Throws: `.adapterNotSupported` when the adapter has none.
    public var lifecycle: any StreamLifecycleAdapter {
        get throws {
            guard let l = adapter as? any StreamLifecycleAdapter else {
                throw MinkError(.adapterNotSupported, "this storage adapter cannot list, delete or retain streams")
            }
            return l
        }
    }

    /// Rejects names reserved for the server: a stream ID or an event type starting with `$`.
    /// - Throws: `.validationFailed` (the HTTP API answers a reserved stream ID with `400
    ///   invalid_stream_id` before it gets here).
    static func checkNotReserved(streamID: String, events: [EventData]) throws {
        if StreamID.isReserved(streamID) {
            throw MinkError.validation("stream IDs starting with $ are reserved for the server: \(streamID)")
        }
        if let e = events.first(where: { StreamID.isReserved($0.type) }) {
            throw MinkError.validation("event types starting with $ are reserved for the server: \(e.type)")
        }
        for e in events {
            if let problem = StreamID.typeProblem(e.type) { throw MinkError.validation("event type \(problem)") }
        }
    }

    /// Up to `query.limit` streams with a readable event, bytewise ascending by ID
    /// (`query.after` exclusive). A stream's retention rules apply as to ``streamInfo(_:)``:
    /// `eventCount` counts what a read returns, and a stream they leave no event of is not
    /// listed (the next streams fill the page). One more query per page, for the rules.
    public func listStreams(_ query: StreamListQuery) async throws -> [StreamInfo] {
        let l = try lifecycle
        var out: [StreamInfo] = []
        var page = query
        while true {
            let found = try await l.listStreams(page)
            let rules = found.isEmpty ? [:] : try await l.streamRetentions(found.map(\.streamID))
            for info in found {
                var info = info
                if let rule = rules[info.streamID], !rule.isEmpty {
                    info = try await applying(rule, to: info)
                    if info.eventCount == 0 { continue }
                }
                out.append(info)
                if out.count == query.limit { return out }
            }
            guard found.count == page.limit, let last = found.last else { return out }
            page.after = last.streamID
        }
    }

    /// Deletes a stream (HTTP-API.md section 5): its events, snapshot and idempotency records
    /// are removed in one transaction with the `$StreamDeleted` record appended to `$deletions`;
    /// `hard` leaves a tombstone that answers every later operation on the stream with
    /// `.streamDeleted`. Subscribers of `all` and async projections see the record in the log;
    /// inline projections get it inside the deletion's transaction.
    /// - Throws: `.streamNotFound`, `.streamDeleted`, `.concurrencyConflict`, `.validationFailed`
    ///   (a reserved stream ID).
    @discardableResult
    public func deleteStream(_ streamID: String, expectedVersion: ExpectedVersion = .any, hard: Bool = false) async throws -> StreamDeletion {
        try StreamID.validate(streamID)
        try Self.checkNotReserved(streamID: streamID, events: [])
        let deletion = try await inlineGate.pass {
            try await lifecycle.deleteStream(streamID, expectedVersion: expectedVersion, hard: hard, hook: inlineHook())
        }
        await hub.notifyCommitted()
        return deletion
    }

    /// Whether the stream was hard-deleted.
    public func isTombstoned(_ streamID: String) async throws -> Bool {
        guard let l = adapter as? any StreamLifecycleAdapter else { return false }
        return try await l.isTombstoned(streamID)
    }

    /// Throws `.streamDeleted` when the stream was hard-deleted.
    public func checkNotTombstoned(_ streamID: String) async throws {
        if try await isTombstoned(streamID) { throw MinkError.streamDeleted(streamID) }
    }

    /// The stream's retention rules (empty when none).
    /// - Throws: `.streamDeleted` for a hard-deleted stream.
    public func retention(of streamID: String) async throws -> StreamRetention {
        try StreamID.validate(streamID)
        try await checkNotTombstoned(streamID)
        return try await lifecycle.streamRetention(streamID) ?? StreamRetention()
    }

    /// Replaces the stream's retention rules; they may be set before its first event.
    /// - Throws: `.validationFailed` (a rule below 1, a reserved stream ID), `.streamDeleted`.
    public func setRetention(_ retention: StreamRetention, of streamID: String) async throws {
        try StreamID.validate(streamID)
        try Self.checkNotReserved(streamID: streamID, events: [])
        try retention.validate()
        try await checkNotTombstoned(streamID)
        try await lifecycle.setStreamRetention(streamID, retention)
    }

    /// Removes every stored event the retention rules exclude now, in batches of `batchSize`
    /// (each its own short write transaction, so appends interleave); returns how many.
    ///
    /// Why 100 by default: an append queued behind a batch waits for it. Measured on SQLite
    /// (`Benchmarks/scavenge`, 200,000 events, busy VM): batches of 1,000 put the appends' p50
    /// at 112 ms (max 945 ms), batches of 100 at 11 ms (max 448 ms, the baseline's max being
    /// 206–570 ms on that machine), for a scavenge 1.5× longer.
    ///
    /// Every pass ends by making the subscription hub forget its ring of recent events, so that
    /// subscribers catching up read storage, without the removed events — even when this pass
    /// removed nothing: another process (on the same PostgreSQL database) may have removed them.
    @discardableResult
    public func scavenge(batchSize: Int = 100) async throws -> Int64 {
        let l = try lifecycle
        var total: Int64 = 0
        let now = Date()
        do {
            while true {
                try Task.checkCancellation()
                let n = try await l.scavengeBatch(now: now, limit: max(1, batchSize))
                total += Int64(n)
                if n == 0 { break }
            }
        } catch {
            // Batches before the failure may have removed events.
            await hub.forgetRecentEvents()
            throw error
        }
        await hub.forgetRecentEvents()
        return total
    }

    // MARK: Reads with retention (used by readStream and streamInfo)

    func readRetained(_ streamID: String, from: Int64, limit: Int, direction: ReadDirection) async throws -> [Event] {
        guard let lifecycle = adapter as? any StreamLifecycleAdapter else {
            return try await adapter.readStream(streamID, from: from, limit: limit, direction: direction)
        }
        // The rules, the page and the tombstone in one storage call (they were three, each a
        // thread hand-off and back).
        let read = try await lifecycle.readStreamForRetention(streamID, from: from, limit: limit, direction: direction)
        guard let retention = read.retention, !retention.isEmpty else {
            if read.events.isEmpty, read.tombstoned { throw MinkError.streamDeleted(streamID) }
            return read.events
        }
        guard limit > 0, let info = try await adapter.streamInfo(streamID) else {
            if try await lifecycle.isTombstoned(streamID) { throw MinkError.streamDeleted(streamID) }
            return []
        }
        let first = retention.firstKeptVersion(streamVersion: info.version)
        let cutoff = retention.cutoff(now: Date())
        func kept(_ e: Event) -> Bool { e.version >= first && (cutoff.map { e.timestamp >= $0 } ?? true) }
        switch direction {
        case .forward:
            // Events past maxAge are the oldest: skip pages of them until the page fills.
            var out: [Event] = []
            var next = max(from, first)
            while out.count < limit {
                let want = limit - out.count
                let page = try await adapter.readStream(streamID, from: next, limit: want, direction: .forward)
                out += page.filter(kept)
                guard page.count == want, let last = page.last else { break }
                next = last.version + 1
            }
            return out
        case .backward:
            let page = try await adapter.readStream(streamID, from: from, limit: limit, direction: .backward)
            return Array(page.prefix(while: kept))
        }
    }

    /// ``retainedInfo(_:)`` and ``readRetained(_:from:limit:direction:)`` — the info `nil` and no
    /// events for a missing stream — in one storage call when the stream has no rules.
    func readRetainedWithInfo(_ streamID: String, from: Int64, limit: Int, direction: ReadDirection) async throws
        -> (info: StreamInfo?, events: [Event])
    {
        guard let lifecycle = adapter as? any StreamLifecycleAdapter else {
            guard let info = try await adapter.streamInfo(streamID) else { return (nil, []) }
            return (info, try await adapter.readStream(streamID, from: from, limit: limit, direction: direction))
        }
        let page = try await lifecycle.readStreamWithInfo(streamID, from: from, limit: limit, direction: direction)
        guard let info = page.info.info else {
            if page.info.tombstoned { throw MinkError.streamDeleted(streamID) }
            return (nil, [])
        }
        guard let retention = page.info.retention, !retention.isEmpty else { return (info, page.events) }
        // Rules (rare): the info and the page as their own reads make them.
        return (try await applying(retention, to: info), try await readRetained(streamID, from: from, limit: limit, direction: direction))
    }

    func retainedInfo(_ streamID: String) async throws -> StreamInfo? {
        guard let lifecycle = adapter as? any StreamLifecycleAdapter else { return try await adapter.streamInfo(streamID) }
        // The info with the rules, or the tombstone, in one storage call.
        let found = try await lifecycle.streamInfoForRetention(streamID)
        guard var info = found.info else {
            if found.tombstoned { throw MinkError.streamDeleted(streamID) }
            return nil
        }
        if let retention = found.retention, !retention.isEmpty {
            info = try await applying(retention, to: info)
        }
        return info
    }

    /// `info` with `eventCount` what the rules keep of its stored events now.
    private func applying(_ retention: StreamRetention, to info: StreamInfo) async throws -> StreamInfo {
        var info = info
        let firstStored = info.version - info.eventCount + 1
        var first = max(firstStored, retention.firstKeptVersion(streamVersion: info.version))
        if let cutoff = retention.cutoff(now: Date()), first <= info.version {
            first = try await firstVersion(of: info.streamID, from: first, through: info.version, committedSince: cutoff)
        }
        info.eventCount = max(0, info.version - first + 1)
        return info
    }

    /// The first version in `from...through` committed at or after `cutoff` (`through + 1` when
    /// none): a binary search over single-event reads — log₂ of the stream's length of them —
    /// since a stream's events are committed in version order (the rule `maxAgeSeconds` keeps a
    /// suffix of the stream, as reads assume too).
    private func firstVersion(of streamID: String, from: Int64, through: Int64, committedSince cutoff: Date) async throws -> Int64 {
        var lo = from, hi = through + 1
        while lo < hi {
            let mid = lo + (hi - lo) / 2
            // The first stored event at or after `mid` (versions may be missing below the kept ones).
            guard let e = try await adapter.readStream(streamID, from: mid, limit: 1, direction: .forward).first, e.version <= through else {
                hi = mid
                continue
            }
            if e.timestamp < cutoff { lo = e.version + 1 } else { hi = mid }
        }
        return lo
    }
}
