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

/// A `GET` whose connection closes before its answer is ready stops its work (its task is
/// cancelled); a `POST` runs to its end (its effect is stored, a retry finds it).
@Suite(.timeLimit(.minutes(3))) struct ClosedConnectionCancelsReadsTests {
    final class Probe: Sendable {
        let cancelled = Mutex<[String]>([])
        let finished = Mutex<[String]>([])
    }

    /// A responder that works for up to 5 s, noting whether its task was cancelled meanwhile.
    static func slowResponder(_ probe: Probe) -> HTTPClosureResponder {
        HTTPClosureResponder { request in
            for _ in 0..<250 where !Task.isCancelled {
                // Not `Task.sleep`: its `CancellationError` is what the test must not depend on.
                _ = await onIOThread { usleep(20_000) }
            }
            if Task.isCancelled {
                probe.cancelled.withLock { $0.append(request.method) }
            } else {
                probe.finished.withLock { $0.append(request.method) }
            }
            return HTTPResponse(status: 200, bytes: Array(repeating: UInt8(ascii: "x"), count: 100_000))
        }
    }

    @Test(arguments: ["GET", "HEAD", "POST"])
    func aResetConnectionCancelsOnlyReads(method: String) async throws {
        let probe = Probe()
        try await withTestServer(responder: Self.slowResponder(probe)) { server, port in
            let raw = try await RawClient.connect(port: port)
            let body = method == "POST" ? "Content-Length: 2\r\n\r\n{}" : "\r\n"
            await raw.send("\(method) /slow HTTP/1.1\r\nHost: x\r\n\(body)")
            for _ in 0..<200 where server.metrics.totalRequests == 0 {
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(server.metrics.totalRequests == 1)
            raw.reset()  // the client goes away with a reset
            let deadline = ContinuousClock.now + .seconds(10)
            while probe.cancelled.withLock({ $0.count }) + probe.finished.withLock({ $0.count }) == 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            let cancelled = probe.cancelled.withLock { $0 }, finished = probe.finished.withLock { $0 }
            if method == "POST" {
                #expect(finished == ["POST"], "a write runs to its end")
                #expect(cancelled.isEmpty)
            } else {
                #expect(cancelled == [method], "the read outlived its connection")
                #expect(finished.isEmpty)
            }
        }
    }
}
