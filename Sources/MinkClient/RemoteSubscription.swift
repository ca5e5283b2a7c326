import Foundation
import Mink
import MinkHTTP
import MinkWire

extension MinkClient {
    /// Every event of the tenant's log after `position` (exclusive): stored events, then live
    /// ones (`GET /v1/subscriptions/all`). See ``RemoteSubscriptionMessages`` for reconnects.
    ///
    /// Named `after:` because it is exclusive, unlike ``MinkClient/load(_:fromVersion:)``'s
    /// inclusive `fromVersion:`: `subscribeAll(after: 0)` starts with position 1.
    public func subscribeAll(after position: UInt64 = 0, eventTypes: [String] = []) -> RemoteSubscription {
        RemoteSubscription(messages: messages(.all, after: position, eventTypes: eventTypes))
    }

    /// The events of one stream after `version` (exclusive) (`GET /v1/subscriptions/streams/{id}`).
    public func subscribeStream(_ streamID: String, afterVersion version: Int64 = 0, eventTypes: [String] = []) -> RemoteSubscription {
        RemoteSubscription(messages: messages(.stream(streamID), after: UInt64(max(version, 0)), eventTypes: eventTypes))
    }

    /// The events of one category after `position` (exclusive)
    /// (`GET /v1/subscriptions/categories/{category}`).
    public func subscribeCategory(_ category: String, after position: UInt64 = 0, eventTypes: [String] = []) -> RemoteSubscription {
        RemoteSubscription(messages: messages(.category(category), after: position, eventTypes: eventTypes))
    }

    /// A subscription with its control messages: events, `caughtUp` (after each connection's
    /// catch-up) and `fellBehind` — what the server-sent events carry.
    /// - Parameters:
    ///   - target: the whole log, a category, or one stream.
    ///   - after: a global position, or a stream version for `.stream` (exclusive).
    ///   - eventTypes: only these types (empty: every type).
    public func messages(_ target: SubscriptionTarget, after: UInt64 = 0, eventTypes: [String] = []) -> RemoteSubscriptionMessages {
        RemoteSubscriptionMessages(client: self, target: target, start: after, eventTypes: eventTypes)
    }
}

/// A remote subscription as a stream of ``Mink/SubscriptionMessage``s over server-sent events.
///
/// When the connection drops (a network failure, a server restart, the idle timeout without
/// even a keepalive) the iterator reconnects under the client's `reconnectPolicy` and sends
/// `Last-Event-ID` with the last `id:` it saw, so the server resumes right after it: no event is
/// skipped or repeated. As a second line of defence the iterator also drops any event whose
/// position (version, for a stream) is not beyond the last one delivered. Every connection
/// sends its own `caughtUp` after its catch-up.
///
/// Cancelling the consuming task (or breaking out of the loop) closes the connection. The
/// sequence throws when `reconnectPolicy.maxAttempts` consecutive connection attempts fail, or
/// at once for an answer that retrying cannot fix (`400`, `401`, `403`, `404`).
public struct RemoteSubscriptionMessages: AsyncSequence, Sendable {
    public typealias Element = SubscriptionMessage

    let client: MinkClient
    let target: SubscriptionTarget
    let start: UInt64
    let eventTypes: [String]

    /// Makes the iterator; nothing connects until its first `next()`.
    public func makeAsyncIterator() -> Iterator { Iterator(messages: self) }

    /// Connects, reconnects and turns server-sent events into messages.
    public struct Iterator: AsyncIteratorProtocol {
        let m: RemoteSubscriptionMessages
        private var connection: SSEEventStream.AsyncIterator?
        /// The last position (stream version) delivered, or the start: the resume point.
        private var lastDelivered: UInt64
        private var failures = 0
        private var connected = false
        /// The `Retry-After` of the last refusal, for the next reconnect's wait.
        private var serverWait: Duration?
        /// How many times the iterator tried to connect again after its first connection (failed
        /// attempts included).
        public private(set) var reconnects = 0

        init(messages: RemoteSubscriptionMessages) {
            m = messages
            lastDelivered = messages.start
        }

        private var path: [String] {
            switch m.target {
            case .all: ["v1", "subscriptions", "all"]
            case .category(let c): ["v1", "subscriptions", "categories", PathEncoding.encode(c)]
            case .stream(let s): ["v1", "subscriptions", "streams", PathEncoding.encode(s)]
            }
        }

        private var isStream: Bool {
            if case .stream = m.target { return true }
            return false
        }

        /// The stream of a stream subscription, for the details of its errors.
        private var streamID: String? {
            if case .stream(let s) = m.target { return s }
            return nil
        }

        private mutating func connect() {
            var query = [("after", String(m.start))]
            if !m.eventTypes.isEmpty { query.append(("type", m.eventTypes.joined(separator: ","))) }
            let client = m.client
            // The first connection starts at `after`; a reconnect resumes after the last id seen
            // (Last-Event-ID overrides `after` on the server).
            let lastEventID = connected ? String(lastDelivered) : nil
            if connected { reconnects += 1 }
            connected = true
            let stream = client.http.events(
                host: client.host, port: client.port, target: client.target(path, query: query), headers: client.commonHeaders(),
                lastEventID: lastEventID, readTimeout: client.timeouts.subscriptionIdle
            )
            connection = stream.makeAsyncIterator()
        }

        /// The next message; `nil` when the consuming task is cancelled.
        /// - Throws: ``Mink/MinkError`` — `.unavailable` after too many failed reconnects, the
        ///   mapped code of a non-retryable status, `.serializationFailed` for a malformed event.
        public mutating func next() async throws -> SubscriptionMessage? {
            while true {
                if Task.isCancelled {
                    connection = nil
                    return nil
                }
                if connection == nil { connect() }
                let failure: MinkError
                do {
                    if let sse = try await connection!.next() {
                        failures = 0
                        if let message = try handle(sse) { return message }
                        continue
                    }
                    failure = MinkError(.unavailable, "the server ended the event stream", isTransient: true)
                } catch let error as HTTPClientError {
                    if case .unexpectedStatus(let status, let body, let retryAfter) = error {
                        // The server's own error (its code from the body: `410 stream_deleted`,
                        // `400 invalid_tenant`, …): final unless it is a transient refusal.
                        let mapped = ErrorMapping.error(status: status, body: body, streamID: streamID)
                        guard [429, 502, 503, 504].contains(status) || (mapped.isTransient && status != 500) else {
                            connection = nil
                            throw mapped
                        }
                        failure = mapped
                        serverWait = ErrorMapping.retryAfter(retryAfter)
                    } else {
                        failure = ErrorMapping.transportError(error, method: "GET", target: "subscription")
                        // The client's own settings (a line break in its tenant): no reconnect helps.
                        if !failure.isTransient {
                            connection = nil
                            throw failure
                        }
                    }
                } catch let error as MinkError {
                    connection = nil
                    throw error
                } catch {
                    failure = ErrorMapping.transportError(error, method: "GET", target: "subscription")
                }
                connection = nil
                if Task.isCancelled { return nil }
                failures += 1
                let policy = m.client.reconnectPolicy
                if failures >= policy.maxAttempts { throw failure }
                var wait = policy.backoff(afterAttempt: Swift.min(failures, 32))
                // `Retry-After` of a 429/503: not sooner than the server asked (within what the
                // client accepts to wait, as for requests).
                if let asked = serverWait {
                    serverWait = nil
                    wait = Swift.max(wait, Swift.min(asked, m.client.maxRetryAfter))
                }
                do { try await Task.sleep(for: wait) } catch { return nil }
            }
        }

        private mutating func handle(_ sse: SSEEvent) throws -> SubscriptionMessage? {
            switch sse.event {
            case "message":
                let event: Event
                do { event = try Event(jsonString: sse.data) } catch {
                    throw MinkError(.serializationFailed, "malformed event in the subscription: \(error)")
                }
                let key = isStream ? UInt64(Swift.max(event.version, 0)) : event.globalPosition
                // Defensive: never deliver an event at or before one already delivered.
                guard key > lastDelivered else { return nil }
                lastDelivered = key
                return .event(event)
            case SSEEventName.caughtUp:
                return .caughtUp(position: try Self.position(sse.data))
            case SSEEventName.fellBehind:
                return .fellBehind(position: try Self.position(sse.data))
            default:
                return nil  // an event type this client does not know: ignored, like EventSource does
            }
        }

        private static func position(_ data: String) throws -> UInt64 {
            do { return UInt64(clamping: try PositionBody(jsonString: data).position) } catch {
                throw MinkError(.serializationFailed, "malformed control message in the subscription: \(error)")
            }
        }

    }
}

/// A remote subscription delivering only events (the remote twin of ``Mink/Subscription``): see
/// ``RemoteSubscriptionMessages`` for reconnects and ordering.
///
/// ```swift
/// for try await event in client.subscribeAll(after: 0) {
///     print(event.globalPosition, event.type)
/// }
/// ```
public struct RemoteSubscription: AsyncSequence, Sendable {
    public typealias Element = Event

    /// The underlying message stream.
    public let messages: RemoteSubscriptionMessages

    /// Makes the iterator.
    public func makeAsyncIterator() -> Iterator { Iterator(inner: messages.makeAsyncIterator()) }

    /// Yields the events of the underlying message stream.
    public struct Iterator: AsyncIteratorProtocol {
        var inner: RemoteSubscriptionMessages.Iterator

        /// How many times the subscription reconnected.
        public var reconnects: Int { inner.reconnects }

        /// The next event; `nil` when the consuming task is cancelled.
        public mutating func next() async throws -> Event? {
            while let message = try await inner.next() {
                if case .event(let e) = message { return e }
            }
            return nil
        }
    }
}
