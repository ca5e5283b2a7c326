import Mink
import Testing

@Suite("W3C trace context", .timeLimit(.minutes(3)))
struct TraceContextTests {
    @Test func parsesAndWritesTraceparent() throws {
        let value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let t = try #require(TraceContext(traceparent: value))
        #expect(t.traceID == "4bf92f3577b34da6a3ce929d0e0e4736" && t.spanIDHex == "00f067aa0ba902b7" && t.flags == 1)
        #expect(t.traceparent == value)
        #expect(TraceContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")?.flags == 0)
        // A later version may carry more fields after a dash; its known part is read.
        #expect(TraceContext(traceparent: "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds")?.traceID
                == "4bf92f3577b34da6a3ce929d0e0e4736")
    }

    @Test(arguments: [
        "", "00", "garbage",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   // uppercase
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   // zero trace ID
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   // zero span ID
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // version ff
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", // version 00 with more
        "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",   // dashes misplaced
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",  // later version, no dash
    ])
    func refusesInvalidHeaders(_ value: String) {
        #expect(TraceContext(traceparent: value) == nil)
    }

    @Test func childrenKeepTheTraceAndNewTracesDiffer() {
        let root = TraceContext.newTrace()
        let child = root.child()
        #expect(child.traceID == root.traceID && child.spanID != root.spanID && child.flags == root.flags)
        #expect(TraceContext.newTrace().traceID != root.traceID)
        #expect(TraceContext(traceparent: root.traceparent) == root)
        var ids = Set<UInt64>()
        for _ in 0..<10_000 { ids.insert(TraceContext.newTrace().spanID) }
        #expect(ids.count == 10_000 && !ids.contains(0))
    }
}
