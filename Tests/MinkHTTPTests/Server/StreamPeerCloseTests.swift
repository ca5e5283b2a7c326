import Glibc
import Synchronization
import Testing
@testable import MinkHTTP

/// A streaming response whose client has gone must end promptly, even when the client went
/// before the stream began and the stream writes nothing for a long time.
@Suite(.timeLimit(.minutes(3))) struct StreamPeerCloseTests {
    final class Probe: Sendable {
        let started = Atomic<Int>(0)
        let ended = Atomic<Int>(0)
    }

    @Test func streamIsCancelledWhenThePeerClosedBeforeItStarted() async throws {
        let probe = Probe()
        let responder = HTTPClosureResponder { _ in
            // The client closes while the responder is still preparing the stream.
            try? await Task.sleep(for: .milliseconds(300))
            return HTTPResponse(status: 200, headers: ["Content-Type": "text/event-stream"], body: .stream { w in
                probe.started.add(1, ordering: .relaxed)
                defer { probe.ended.add(1, ordering: .relaxed) }
                _ = w
                // A quiet subscription: nothing to write for a long time, so no failing write
                // can reveal that the client has gone.
                try await Task.sleep(for: .seconds(20))
            })
        }
        try await withTestServer(responder: responder) { server, port in
            let raw = try await RawClient.connect(port: port)
            await raw.send("GET /quiet HTTP/1.1\r\nHost: x\r\n\r\n")
            for _ in 0..<100 where server.metrics.totalRequests == 0 {
                try await Task.sleep(for: .milliseconds(10))
            }
            _ = Glibc.shutdown(raw.fd, Int32(SHUT_RDWR))  // the client goes away
            for _ in 0..<150 where probe.started.load(ordering: .relaxed) == 0 || server.metrics.activeStreams > 0 {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(probe.started.load(ordering: .relaxed) == 1)
            #expect(probe.ended.load(ordering: .relaxed) == 1, "the stream outlived its client")
            #expect(server.metrics.activeStreams == 0)
        }
    }
}
