import Foundation
import Mink
import MinkHTTP
import MinkTestFixtures
import Testing

@testable import MinkClient

@Suite("Trace context propagation", .timeLimit(.minutes(3)))
struct TracePropagationTests {
    /// `MinkClient` sends `traceparent` of the current `ServiceContext`, on requests and on event
    /// streams, and none outside a traced context.
    @Test func theCurrentTraceContextIsSentAsTraceparent() async throws {
        try await withServer { server in
            let proxy = Proxy(backendPort: server.port)
            let port = try proxy.start()
            let client = server.client(port: port)
            let trace = try #require(TraceContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
            try await TraceContext.withCurrent(trace) {
                try await client.append("traced-1", events: [raw("E")])
                var subscription = client.subscribeAll().makeAsyncIterator()
                _ = try await subscription.next()
            }
            try await client.append("untraced-1", events: [raw("E")])
            await proxy.shutdown()
            let requests = proxy.requests
            #expect(requests.count == 3)
            #expect(requests[0].headers["traceparent"] == trace.traceparent)
            #expect(requests[1].target.hasPrefix("/v1/subscriptions/all"))
            #expect(requests[1].headers["traceparent"] == trace.traceparent)
            #expect(requests[2].headers["traceparent"] == nil)
        }
    }

    /// `tracestate` goes with the `traceparent` it belongs to, and minkd hands it back.
    @Test func theCurrentTracestateIsSentWithTraceparent() async throws {
        try await withServer { server in
            let proxy = Proxy(backendPort: server.port)
            let port = try proxy.start()
            let client = server.client(port: port)
            let trace = try #require(TraceContext(
                traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", tracestate: "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
            ))
            _ = try await TraceContext.withCurrent(trace) {
                try await client.append("traced-1", events: [raw("E")])
            }
            _ = try await TraceContext.withCurrent(try #require(TraceContext(traceparent: trace.traceparent))) {
                try await client.append("traced-2", events: [raw("E")])
            }
            await proxy.shutdown()
            let requests = proxy.requests
            #expect(requests.count == 2)
            #expect(requests[0].headers["traceparent"] == trace.traceparent)
            #expect(requests[0].headers["tracestate"] == "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
            #expect(requests[1].headers["traceparent"] == trace.traceparent && requests[1].headers["tracestate"] == nil)
        }
    }
}
