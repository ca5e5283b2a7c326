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

    @Test func tracestateIsKeptTrimmedAndValidated() throws {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        // Kept as sent, in order (minkd adds no entry of its own); children keep it.
        let t = try #require(TraceContext(traceparent: parent, tracestate: "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"))
        #expect(t.tracestate == "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
        #expect(t.child().tracestate == t.tracestate && t.child().traceID == t.traceID)
        // Optional whitespace and empty members go; multi-tenant keys and any printable value stay.
        #expect(TraceContext.normalizedTracestate(" rojo=1 ,, \tcongo=a b\t, acme@vendor=x/y:z ") == "rojo=1,congo=a b,acme@vendor=x/y:z")
        #expect(TraceContext.normalizedTracestate("") == nil && TraceContext.normalizedTracestate(" , ") == nil)
        // Invalid values are dropped whole; the trace itself still continues.
        for bad in ["Rojo=1", "rojo", "rojo=", "rojo=a=b", "rojo=1,rojo=2", "=1", "rojo=caf\u{e9}", "rojo=a\u{7}",
                    "a@1vendor=x", "a@vendorname1234567=x", String(repeating: "k", count: 257) + "=v",
                    "k=" + String(repeating: "v", count: 257),
                    (0..<33).map { "k\($0)=v" }.joined(separator: ",")] {
            #expect(TraceContext.normalizedTracestate(bad) == nil, "\(bad.prefix(40))")
        }
        #expect(TraceContext.normalizedTracestate((0..<32).map { "k\($0)=v" }.joined(separator: ",")) != nil)
        let dropped = try #require(TraceContext(traceparent: parent, tracestate: "Rojo=1"))
        #expect(dropped.tracestate == nil && dropped.traceID == "4bf92f3577b34da6a3ce929d0e0e4736")
        // Without a valid traceparent, tracestate is not read.
        #expect(TraceContext(traceparent: "garbage", tracestate: "rojo=1") == nil)
    }
}
