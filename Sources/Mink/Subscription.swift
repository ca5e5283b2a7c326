import Foundation
import Logging

/// What a subscription follows.
public enum SubscriptionTarget: Sendable, Hashable {
    /// The tenant's whole log; the start is a global position.
    case all
    /// Streams of one category; the start is a global position.
    case category(String)
    /// One stream; the start is a stream version.
    case stream(String)
}

/// One item of a subscription's message stream (what minkd's SSE endpoints send).
public enum SubscriptionMessage: Sendable, Hashable {
    /// A stored event.
    case event(Event)
    /// Every stored event up to `position` was delivered; live events follow. For a stream
    /// subscription the position is a stream version.
    case caughtUp(position: UInt64)
    /// The subscriber fell more than the hub's buffer behind the head; delivery continues from
    /// storage after `position` (nothing lost or repeated), then `caughtUp` again.
    case fellBehind(position: UInt64)
    /// Nothing happened for the heartbeat interval.
    case heartbeat
}

/// A subscription as a stream of ``SubscriptionMessage``s: stored events first (catch-up), then
/// `caughtUp`, then live events — none skipped or repeated at the switch, even while others
/// append. Cancelling the consuming task ends it.
public struct SubscriptionMessages: AsyncSequence, Sendable {
    public typealias Element = SubscriptionMessage

    let hub: SubscriptionHub
    let adapter: any EventStoreAdapter
    let target: SubscriptionTarget
    let eventTypes: [String]
    let start: UInt64
    let heartbeat: Duration?
    let pageSize: Int

    public func makeAsyncIterator() -> Iterator {
        Iterator(messages: self)
    }

    /// Produces the messages; see ``SubscriptionMessages``.
    public struct Iterator: AsyncIteratorProtocol {
        enum Phase { case catchingUp, live }

        let m: SubscriptionMessages
        /// What is read from the hub and storage: for a stream, its events and `$deletions` (a
        /// hard deletion of the stream ends the subscription).
        let filter: EventFilter
        /// What is delivered.
        let userFilter: EventFilter
        var phase = Phase.catchingUp
        var cursor: UInt64 = 0  // global position: every matching event ≤ cursor was delivered
        var streamVersion: Int64 = 0  // stream subscriptions: the last version delivered
        /// Global-log subscriptions: the position of the last event delivered (the start before
        /// the first) — what `fell-behind` reports. With a type or category filter the cursor
        /// runs ahead of it (it passes events the filter drops).
        var lastDelivered: UInt64 = 0
        var streamCatchUpDone: Bool
        /// Stream subscriptions: live events below this version are not delivered — the
        /// stream's `truncateBefore` as read at the latest page from storage (the only rule that
        /// can exclude an event as it commits: `maxCount` ≥ 1 and `maxAgeSeconds` ≥ 1 keep the
        /// newest event).
        var liveFloor: Int64 = 0
        /// Stream subscriptions: the versions up to this one were skipped by the retention rules
        /// at the catch-up; never delivered later (an event committed while the catch-up read
        /// the rules may also reach the live path).
        var retainedThrough: Int64 = 0
        var pending: [SubscriptionMessage] = []
        var pendingIndex = 0
        var finished = false
        /// Whether the hub was checked against storage for this subscription (its first read).
        var revalidated = false
        /// When ``next()`` last returned a message (the heartbeat interval counts from it).
        var lastMessage = ContinuousClock.now

        init(messages: SubscriptionMessages) {
            m = messages
            switch messages.target {
            case .all:
                filter = EventFilter(eventTypes: messages.eventTypes)
                userFilter = filter
                cursor = messages.start
                lastDelivered = messages.start
                streamCatchUpDone = true
            case .category(let c):
                filter = EventFilter(category: c, eventTypes: messages.eventTypes)
                userFilter = filter
                cursor = messages.start
                lastDelivered = messages.start
                streamCatchUpDone = true
            case .stream(let s):
                filter = EventFilter(streamIDs: [s, StreamID.deletions])
                userFilter = EventFilter(eventTypes: messages.eventTypes, streamIDs: [s])
                streamVersion = Int64(clamping: messages.start)
                streamCatchUpDone = false
            }
        }

        /// What `caught-up` reports: every matching event up to it was delivered (for the global
        /// log, the position read up to).
        var reportedPosition: UInt64 {
            if case .stream = m.target { return UInt64(Swift.max(streamVersion, 0)) }
            return cursor
        }

        /// What `fell-behind` reports: the last position (stream version) delivered, as the
        /// contract says (section 7).
        var deliveredPosition: UInt64 {
            if case .stream = m.target { return UInt64(Swift.max(streamVersion, 0)) }
            return lastDelivered
        }

        /// Whether ``next()`` has a message ready without waiting (the rest of a page already
        /// read): a writer gathers those into one write instead of one per message.
        public var hasBufferedMessages: Bool { pendingIndex < pending.count }

        /// Queues what the subscriber gets of `events` (read after the cursor). `window`: the
        /// stream's retention at a page read from storage (stream subscriptions), `nil` for
        /// live events from the hub, which only `liveFloor` can exclude.
        mutating func enqueue(_ events: [Event], window: RetentionWindow? = nil) {
            for e in events {
                if case .stream(let s) = m.target {
                    guard e.streamID == s else {
                        // `$deletions`: the stream's hard deletion ends the subscription (a soft
                        // one does not: the stream may go on at its deleted version + 1).
                        if Self.isHardDeletion(e, of: s) {
                            finished = true
                            return
                        }
                        continue
                    }
                    // Skipped by retention at the catch-up, or excluded by the rules now.
                    if e.version <= retainedThrough { continue }
                    // Delivered already, or not after the start: a start beyond the stream's
                    // version is kept, as the global log's is (`caught-up` carries it), and only
                    // later versions come — live events below it came before.
                    if e.version <= streamVersion { continue }
                    if let window { if !window.keeps(e) { continue } } else if e.version < liveFloor { continue }
                }
                if !userFilter.matches(e) { continue }
                pending.append(.event(e))
                streamVersion = Swift.max(streamVersion, e.version)
                lastDelivered = Swift.max(lastDelivered, e.globalPosition)
            }
        }

        /// Whether `e` is the `$StreamDeleted` record of a hard deletion of `streamID`.
        static func isHardDeletion(_ e: Event, of streamID: String) -> Bool {
            guard e.streamID == StreamID.deletions, e.type == StreamID.streamDeletedType,
                case .object(let fields)? = try? JSONValue(json: e.data)
            else { return false }
            return fields["streamId"] == .string(streamID) && fields["hard"] == .bool(true)
        }

        public mutating func next() async throws -> SubscriptionMessage? {
            if !revalidated {
                // Before catching up: the hub's memory of recent events must not be older than
                // storage (another process deleted a stream, a tenant, …; see
                // ``SubscriptionHub/revalidate()``).
                revalidated = true
                await m.hub.revalidate()
            }
            while true {
                if pendingIndex < pending.count {
                    let msg = pending[pendingIndex]
                    pendingIndex += 1
                    if pendingIndex == pending.count { pending.removeAll(keepingCapacity: true); pendingIndex = 0 }
                    lastMessage = .now
                    return msg
                }
                if finished || Task.isCancelled { return nil }

                if !streamCatchUpDone, case .stream(let id) = m.target {
                    // Read the stream by version; then continue on the global log from a position
                    // at which every earlier event of the stream has been read.
                    let h = try await m.hub.headPosition()
                    // The stream's retention rules apply as to a load (HTTP-API.md section 5): a
                    // start below the first kept version starts there, and events past
                    // `maxAgeSeconds` are skipped. Skipped versions count as read (never
                    // delivered later, even if the live path reads them), but never beyond the
                    // stream's version: a `truncateBefore` above it must not move the
                    // `caught-up` position past the stream.
                    let window = try await RetentionWindow.current(of: id, adapter: m.adapter)
                    liveFloor = window?.rules.truncateBefore ?? 0
                    if let window, streamVersion < Int64.max {
                        let skipped = Swift.min(window.firstKeptVersion, window.streamVersion + 1) - 1
                        if skipped > streamVersion {
                            streamVersion = skipped
                            retainedThrough = skipped
                        }
                    }
                    // A start at the largest version has nothing after it (and must not overflow).
                    let page = streamVersion == Int64.max ? [] : try await m.adapter.readStream(id, from: streamVersion + 1, limit: m.pageSize, direction: .forward)
                    if let last = page.last {
                        cursor = Swift.max(cursor, last.globalPosition)
                        streamVersion = last.version
                    }
                    for e in page where userFilter.matches(e) && (window?.keeps(e) ?? true) { pending.append(.event(e)) }
                    if page.count < m.pageSize {
                        streamCatchUpDone = true
                        cursor = Swift.max(cursor, h)
                    }
                    continue
                }

                switch try await m.hub.read(after: cursor, filter: filter, limit: m.pageSize) {
                case .events(let events, let newCursor):
                    enqueue(events)
                    cursor = newCursor
                case .fromStorage(let head, let fellBehind):
                    // Only a reader the ring left behind fell behind; one sent to storage because
                    // the hub forgot its memory (every LISTEN reconnect: a PostgreSQL restart
                    // told every up-to-date subscriber `fell-behind`) reads it and stays live.
                    if phase == .live, fellBehind {
                        phase = .catchingUp
                        pending.append(.fellBehind(position: deliveredPosition))
                    }
                    let page = try await m.adapter.readAll(after: cursor, filter: filter, limit: m.pageSize)
                    var window: RetentionWindow?
                    if case .stream(let id) = m.target {
                        // Read from storage: a catch-up, to which the stream's retention applies.
                        window = try await RetentionWindow.current(of: id, adapter: m.adapter)
                        liveFloor = window?.rules.truncateBefore ?? 0
                    }
                    enqueue(page, window: window)
                    if let last = page.last { cursor = last.globalPosition }
                    // A short page means everything visible up to `head` (read before) has been seen.
                    if page.count < m.pageSize { cursor = Swift.max(cursor, head) }
                case .upToDate:
                    if phase == .catchingUp {
                        phase = .live
                        pending.append(.caughtUp(position: reportedPosition))
                        continue
                    }
                    // The heartbeat counts from the last message this subscriber got, not from the
                    // last wake-up: a filter that matches nothing of a busy tenant's traffic is
                    // woken by every commit and would never see a quiet interval (no keepalive,
                    // and a proxy's read timeout cut the stream).
                    var timeout = m.heartbeat
                    if let heartbeat = m.heartbeat {
                        let left = lastMessage + heartbeat - .now
                        if left <= .zero {
                            pending.append(.heartbeat)
                            continue
                        }
                        timeout = left
                    }
                    let woke = await m.hub.waitForEvents(after: cursor, timeout: timeout)
                    if Task.isCancelled { return nil }
                    // Not woken: the interval ran out — or the hub is shut down (a tenant deleted,
                    // the server stopping), when the wait returns at once: the heartbeat hands
                    // control back to the consumer, which ends the stream. Without it this loop
                    // spun on the cooperative pool until the interval passed (15 s stalls).
                    if !woke, m.heartbeat != nil { pending.append(.heartbeat) }
                }
            }
        }
    }
}

/// A subscription delivering only events (seed: `Subscription`): an `AsyncSequence`; cancel the
/// consuming task (or break out of the loop) to close it.
///
/// A transient storage error (`MinkError.isTransient`: the database restarting, a deadline) does
/// not end it, as the seed's `Errors()` channel does not end its subscription: the read is tried
/// again after a pause (50 ms, doubling up to 5 s) from where it was, and nothing is delivered
/// twice or skipped; ``Iterator/transientFailures`` counts them. Any other error is thrown and
/// ends the subscription.
///
/// ```swift
/// for try await event in store.subscribeAll(from: 0) {
///     print(event.type)
/// }
/// ```
public struct Subscription: AsyncSequence, Sendable {
    public typealias Element = Event
    let messages: SubscriptionMessages
    /// Where a wait for storage is said (the store's logger).
    let logger: Logger

    public func makeAsyncIterator() -> Iterator { Iterator(inner: messages.makeAsyncIterator(), logger: logger) }

    /// Yields the events of the underlying message stream.
    public struct Iterator: AsyncIteratorProtocol {
        var inner: SubscriptionMessages.Iterator
        let logger: Logger
        /// The transient storage errors met and waited out so far.
        public private(set) var transientFailures = 0

        /// The next event; `nil` when the consuming task is cancelled.
        /// - Throws: storage errors that are not transient (`MinkError.isTransient` false).
        public mutating func next() async throws -> Event? {
            var failuresInARow = 0
            while true {
                do {
                    while let message = try await inner.next() {
                        if failuresInARow > 0 {
                            logger.notice("subscription reads again", metadata: ["failed_reads": "\(failuresInARow)"])
                            failuresInARow = 0
                        }
                        if case .event(let e) = message { return e }
                    }
                    return nil
                } catch let error as MinkError where error.isTransient {
                    // The message iterator moves its cursor only after a read succeeded: the same
                    // read is made again.
                    transientFailures += 1
                    failuresInARow += 1
                    if failuresInARow == 1 {
                        logger.warning("subscription waits for storage: reads are retried", metadata: ["error": "\(error)"])
                    }
                    let pause = Duration.milliseconds(50) * (1 << Swift.min(failuresInARow - 1, 7))
                    do { try await Task.sleep(for: Swift.min(pause, .seconds(5))) } catch { return nil }
                }
            }
        }
    }
}
