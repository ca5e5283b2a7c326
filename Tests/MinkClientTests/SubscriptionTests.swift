import Foundation
import Mink
import MinkTestFixtures
import MinkClient
import MinkHTTP
import MinkServer
import Synchronization
import Testing

@Suite("Subscriptions over server-sent events", .timeLimit(.minutes(3)))
struct SubscriptionTests {
    /// Reads `count` events from a subscription, with the number of reconnects it needed.
    static func collect(_ subscription: RemoteSubscription, count: Int) async throws -> (events: [Event], reconnects: Int) {
        var events: [Event] = []
        var it = subscription.makeAsyncIterator()
        while events.count < count, let e = try await it.next() { events.append(e) }
        return (events, it.reconnects)
    }

    @Test func everyPositionExactlyOnceWhileFourTasksAppend() async throws {
        try await withServer { server in
            let client = server.client()
            try await client.append("pre-1", events: [raw("Before")])
            let perTask = 60
            let total = 1 + 4 * perTask
            let consumer = Task { try await Self.collect(client.subscribeAll(after: 0), count: total) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for t in 0..<4 {
                    group.addTask {
                        var written = 0
                        while written < perTask {
                            let n = min(1 + (written % 4), perTask - written)
                            try await client.append("load-\(t)", events: (0..<n).map { _ in raw("Tick", #"{"t":\#(t)}"#) })
                            written += n
                        }
                    }
                }
                try await group.waitForAll()
            }
            let (events, _) = try await consumer.valueCancellingWithCaller
            #expect(events.map(\.globalPosition) == Array(1...UInt64(total)))
            for t in 0..<4 {
                #expect(events.filter { $0.streamID == "load-\(t)" }.map(\.version) == Array(1...Int64(perTask)))
            }
        }
    }

    /// A refusal of the subscription carries the server's error code (it was guessed from the
    /// status: `410` came out as `.badRequest "HTTP 410"`).
    @Test func aRefusedSubscriptionThrowsTheServersErrorCode() async throws {
        try await withServer { server in
            let client = server.client()
            try await client.append("gone-1", events: [raw("Before")])
            _ = try await client.deleteStream("gone-1", hard: true)
            var it = client.subscribeStream("gone-1").makeAsyncIterator()
            do {
                _ = try await it.next()
                Issue.record("a subscription to a hard-deleted stream was accepted")
            } catch let error as MinkError {
                #expect(error.code == .streamDeleted, "\(error)")
                #expect(error.streamID == "gone-1", "\(error)")
            }
            #expect(it.reconnects == 0, "not retried")
        }
    }

    @Test func messagesCarryCaughtUpThenLiveEvents() async throws {
        try await withServer { server in
            let client = server.client()
            try await client.append("order-1", [OrderCreated(customerID: "a"), OrderShipped()])
            var it = client.messages(.all, after: 0).makeAsyncIterator()
            var seen: [SubscriptionMessage] = []
            for _ in 0..<3 { seen.append(try #require(try await it.next())) }
            #expect(seen.compactMap { m -> UInt64? in if case .event(let e) = m { e.globalPosition } else { nil } } == [1, 2])
            #expect(seen.last == .caughtUp(position: 2))
            try await client.append("order-1", [OrderShipped()])
            guard case .event(let live) = try #require(try await it.next()) else {
                Issue.record("expected a live event")
                return
            }
            #expect(live.globalPosition == 3 && live.version == 3 && live.type == "OrderShipped")
        }
    }

    @Test func streamAndCategorySubscriptionsWithTypeFilters() async throws {
        try await withServer { server in
            let client = server.client()
            try await client.append("order-1", [OrderCreated(customerID: "a"), ItemAdded(sku: "x", quantity: 1, price: 1)])
            try await client.append("cart-1", events: [raw("CartOpened")])
            try await client.append("order-2", [OrderCreated(customerID: "b")])
            try await client.append("order-1/ü x", events: [raw("Weird")])

            let stream = try await Self.collect(client.subscribeStream("order-1", afterVersion: 1), count: 1)
            #expect(stream.events.map(\.version) == [2])
            let category = try await Self.collect(client.subscribeCategory("order"), count: 4)
            #expect(category.events.map(\.globalPosition) == [1, 2, 4, 5])
            let typed = try await Self.collect(client.subscribeAll(eventTypes: ["OrderCreated"]), count: 2)
            #expect(typed.events.map(\.globalPosition) == [1, 4])
            let weird = try await Self.collect(client.subscribeStream("order-1/ü x"), count: 1)
            #expect(weird.events.first?.type == "Weird")
            let categoryTyped = try await Self.collect(client.subscribeCategory("order", after: 1, eventTypes: ["OrderCreated", "Weird"]), count: 2)
            #expect(categoryTyped.events.map(\.globalPosition) == [4, 5])
        }
    }

    @Test func resumesAfterTheServerRestartsOnTheSamePortAndStorage() async throws {
        let storage = ServerStorage.memory()
        let current = Mutex<TestServer?>(try await TestServer.start(storage: storage))
        let first = current.withLock { $0! }
        let client = first.client()
        defer { if let s = current.withLock({ $0 }) { Task { await s.shutdown() } } }
        try await withTimeout(.seconds(30)) {
            try await client.append("a-1", events: (0..<5).map { _ in raw("E") })
            let consumer = Task { try await Self.collect(client.subscribeAll(after: 0), count: 12) }
            // Let the subscriber get the first events, then take the server away mid-subscription.
            try await Task.sleep(for: .milliseconds(300))
            await first.shutdown()
            try await Task.sleep(for: .milliseconds(300))  // the client retries meanwhile
            let second = try await TestServer.start(storage: storage, port: first.port)
            current.withLock { $0 = second }
            try await client.append("a-1", events: (0..<4).map { _ in raw("E") })
            try await client.append("b-1", events: (0..<3).map { _ in raw("E") })
            let (events, reconnects) = try await consumer.valueCancellingWithCaller
            #expect(events.map(\.globalPosition) == Array(1...12))
            #expect(reconnects >= 1)
            await second.shutdown()
        }
    }

    @Test func droppedConnectionsResumeWithLastEventID() async throws {
        try await withServer { server in
            let proxy = Proxy(backendPort: server.port)
            proxy.cutStreamsAfter.withLock { $0 = 3 }
            let proxyPort = try proxy.start()
            let direct = server.client()
            let client = server.client(port: proxyPort, token: "tok-1", tenant: "acme")
            let consumer = Task { try await Self.collect(client.subscribeAll(after: 0), count: 10) }
            for i in 0..<10 {
                try await client.append("s-\(i % 3)", events: [raw("E", #"{"i":\#(i)}"#)])
            }
            let (events, reconnects) = try await consumer.valueCancellingWithCaller
            await proxy.shutdown()

            #expect(events.map(\.globalPosition) == Array(1...10))
            #expect(reconnects >= 3)
            // The server never sent an event twice: the resume point was honoured, so the
            // client's own de-duplication had nothing to do.
            #expect(proxy.relayedIDs.withLock { $0 } == (1...10).map(String.init))
            let subscriptions = proxy.requests.filter { $0.target.contains("/subscriptions/") }
            #expect(subscriptions.first?.headers["Last-Event-ID"] == nil)
            #expect(subscriptions.first?.target == "/v1/subscriptions/all?after=0")
            #expect(subscriptions.dropFirst().first?.headers["Last-Event-ID"] == "3")
            #expect(subscriptions.allSatisfy { $0.headers["Mink-Tenant"] == "acme" && $0.headers["Authorization"] == "Bearer tok-1" })
            #expect(try await direct.headPosition() == 0, "the data went to tenant acme")
        }
    }

    /// When a resume point is lost on the way (here a proxy drops `Last-Event-ID`, so the server
    /// replays from the start), the client's own de-duplication delivers each event once.
    @Test func replayedEventsAreDeliveredOnce() async throws {
        try await withServer { server in
            let proxy = Proxy(backendPort: server.port)
            proxy.streamCuts.withLock { $0 = [3, 6] }
            proxy.dropLastEventID.withLock { $0 = true }
            let proxyPort = try proxy.start()
            let client = server.client(port: proxyPort)
            let consumer = Task { try await Self.collect(client.subscribeAll(after: 0), count: 10) }
            for i in 0..<10 {
                try await client.append("s-\(i % 3)", events: [raw("E", #"{"i":\#(i)}"#)])
            }
            let (events, reconnects) = try await consumer.valueCancellingWithCaller
            await proxy.shutdown()
            #expect(events.map(\.globalPosition) == Array(1...10), "each event once, in order")
            #expect(reconnects >= 2)
            let relayed = proxy.relayedIDs.withLock { $0 }
            #expect(relayed.count > 10 && Set(relayed).count == 10, "the server did replay (\(relayed)): the de-duplication was exercised")
        }
    }

    /// A connection that goes silent (no event, no keepalive) is given up after the client's
    /// `subscriptionIdle` and resumed from the last event seen.
    @Test func aSilentConnectionIsReplacedAfterTheIdleTimeout() async throws {
        try await withServer { server in
            // The proxy relays events but not the server's keepalive comments: a quiet stream
            // through it is silent.
            let proxy = Proxy(backendPort: server.port)
            let proxyPort = try proxy.start()
            let client = MinkClient(
                host: "127.0.0.1", port: proxyPort, registry: orderRegistry(),
                // Idle 1 s, and attempts enough for a starved machine: on two loaded cores a
                // 400 ms idle limit cut connections before the catch-up arrived, 200 times.
                timeouts: .init(connect: .seconds(2), request: .seconds(10), subscriptionIdle: .seconds(1)),
                reconnectPolicy: RetryPolicy(maxAttempts: 10_000, initialBackoff: .milliseconds(20), maxBackoff: .milliseconds(100))
            )
            let received = Mutex<[UInt64]>([])
            let consumer = Task { () -> Int in
                var it = client.subscribeAll(after: 0).makeAsyncIterator()
                while received.withLock({ $0.count }) < 3, let e = try await it.next() {
                    received.withLock { $0.append(e.globalPosition) }
                }
                return it.reconnects
            }
            try await client.append("s-1", events: [raw("E"), raw("E")])
            let deadline = Deadline(.seconds(90))
            while received.withLock({ $0.count }) < 2 { try deadline.check("the first two events"); try await Task.sleep(for: .milliseconds(10)) }
            // Now silent (no event, and the proxy passes no keepalive): the client must give up on
            // the connection after 1 s and connect again, resuming after event 2.
            func resumedIDs() -> [String] {
                proxy.requests.filter { $0.target.contains("/subscriptions/") }.compactMap { $0.headers["Last-Event-ID"] }
            }
            while !resumedIDs().contains("2") { try deadline.check("a reconnect after event 2: \(resumedIDs())"); try await Task.sleep(for: .milliseconds(20)) }
            try await client.append("s-1", events: [raw("E")])
            let reconnects = try await consumer.valueCancellingWithCaller
            await proxy.shutdown()
            #expect(received.withLock { $0 } == [1, 2, 3])
            #expect(reconnects >= 1, "the silent connection was not replaced")
        }
    }

    @Test func cancellingTheConsumerClosesTheConnection() async throws {
        try await withServer { server in
            let client = server.client()
            try await client.append("c-1", events: [raw("E")])
            let consumer = Task {
                var it = client.messages(.all).makeAsyncIterator()
                while let m = try await it.next() { _ = m }
                return true
            }
            #expect(try await Self.subscribers(server) == 1)
            consumer.cancel()
            #expect(try await consumer.value, "the sequence ends (nil) when its task is cancelled")
            var open = 1
            for _ in 0..<60 where open != 0 {
                open = try await Self.subscribers(server, waitingFor: 0)
            }
            #expect(open == 0)
        }
    }

    /// The server's `minkd_sse_subscribers` gauge, polled until it equals `waitingFor` (or ~1 s).
    static func subscribers(_ server: TestServer, waitingFor expected: Int = 1) async throws -> Int {
        let http = HTTPClient()
        defer { http.shutdown() }
        var value = -1
        for _ in 0..<20 {
            let r = try await http.execute(HTTPClientRequest(host: "127.0.0.1", port: server.port, target: "/metrics"))
            let text = String(decoding: try r.decodedBody(), as: UTF8.self)
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("minkd_sse_subscribers ") }),
                let v = Double(line.split(separator: " ").last ?? "")
            {
                value = Int(v)
                if value == expected { return value }
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return value
    }
}
