import CEpoll
import Foundation
import Glibc
import Synchronization
import Testing
@testable import MinkHTTP

/// The server's event loops: one poller thread per loop whatever the number of
/// connections, none left after shutdown, and sockets that fail are dropped without
/// spinning.
@Suite(.timeLimit(.minutes(3))) struct EventLoopTests {
    /// Whether a thread of this process is alive.
    static func threadExists(_ tid: Int32) -> Bool {
        FileManager.default.fileExists(atPath: "/proc/self/task/\(tid)")
    }

    /// A thread's CPU time so far, in clock ticks (utime + stime); fails the test when /proc
    /// cannot tell (a check built on it must not pass for want of a reading).
    static func cpuTicks(_ tid: Int32) throws -> Int {
        let stat = try String(contentsOfFile: "/proc/self/task/\(tid)/stat", encoding: .utf8)
        let close = try #require(stat.lastIndex(of: ")"), "unexpected /proc stat: \(stat)")
        // After the command come the state (field 3) ... utime and stime (fields 14, 15).
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        let utime = try #require(fields.count > 12 ? Int(fields[11]) : nil, "no utime in \(stat)")
        let stime = try #require(fields.count > 12 ? Int(fields[12]) : nil, "no stime in \(stat)")
        return utime + stime
    }

    /// A thread's blocked-signal mask (`SigBlk` in /proc), nil when unreadable.
    static func blockedSignals(_ tid: Int32) -> UInt64? {
        guard let status = try? String(contentsOfFile: "/proc/self/task/\(tid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("SigBlk:") }) else { return nil }
        return UInt64(line.dropFirst("SigBlk:".count).trimmingCharacters(in: .whitespaces), radix: 16)
    }

    static func waitFor(_ seconds: Double, _ condition: () -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition()
    }

    @Test func onePollerThreadPerLoopAndNoneAfterShutdown() async throws {
        let threads = try await withTestServer({ $0.eventLoopCount = 3 }) { server, port in
            var clients: [RawClient] = []
            for _ in 0..<100 {
                let c = try await RawClient.connect(port: port)
                await c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                clients.append(c)
            }
            for c in clients {
                let r = await c.readResponses(1)
                #expect(r.first?.head.status == 200)
            }
            #expect(server.metrics.openConnections == 100)
            #expect(await Self.waitFor(2) { server.pollerThreadIDs.count == 3 })
            let threads = server.pollerThreadIDs
            #expect(Set(threads).count == 3)
            #expect(threads.allSatisfy(Self.threadExists))
            return threads
        }
        #expect(threads.count == 3)
        #expect(await Self.waitFor(5) { !threads.contains(where: Self.threadExists) })
    }

    @Test func resetConnectionIsDroppedWithoutSpinning() async throws {
        try await withTestServer({ $0.eventLoopCount = 1 }) { server, port in
            #expect(await Self.waitFor(2) { server.pollerThreadIDs.count == 1 })
            let poller = try #require(server.pollerThreadIDs.first)
            let c = try await RawClient.connect(port: port)
            // A slow request, then more pipelined input than the server buffers: reading is
            // paused, so the reset is reported as a hang-up without input interest.
            var bytes = Array("GET /delay?ms=1500 HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
            let next = Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
            while bytes.count < 200 * 1024 { bytes += next }
            await c.send(bytes)
            #expect(await Self.waitFor(2) { server.metrics.totalRequests == 1 })
            try await Task.sleep(for: .milliseconds(100))
            c.reset()
            #expect(await Self.waitFor(1) { server.metrics.openConnections == 0 })
            // The loop is idle afterwards, not busy with a socket it no longer owns.
            let before = try Self.cpuTicks(poller)
            try await Task.sleep(for: .milliseconds(500))
            let used = try Self.cpuTicks(poller) - before
            #expect(used < 20, "the poller used \(used) ticks in 0.5 s")
            // And it still serves.
            let d = try await RawClient.connect(port: port)
            await d.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(await d.readResponses(1).first?.head.status == 200)
        }
    }

    /// Signals a process handles through Dispatch sources (minkd's SIGTERM/SIGHUP,
    /// Foundation's SIGCHLD) must never land on a poller thread — even one started from a
    /// thread that lets every signal through (as a program's main thread does).
    @Test func pollerThreadsBlockEverySignal() async throws {
        let server = HTTPServer(configuration: HTTPServerConfiguration(host: "127.0.0.1", port: 0), responder: TestResponder())
        let started: Bool = await onIOThread {
            var none = sigset_t()
            sigemptyset(&none)
            pthread_sigmask(SIG_SETMASK, &none, nil)
            return (try? server.start()) != nil
        }
        #expect(started)
        let loops = HTTPServerConfiguration(host: "127.0.0.1", port: 0).eventLoopCount
        #expect(await Self.waitFor(2) { server.pollerThreadIDs.count == loops })
        for tid in server.pollerThreadIDs {
            let mask = Self.blockedSignals(tid) ?? 0
            for signal in [SIGCHLD, SIGTERM, SIGINT, SIGHUP] {
                #expect(mask & (1 << UInt64(signal - 1)) != 0, "signal \(signal) is blocked on poller \(tid)")
            }
        }
        await server.shutdown(gracePeriod: .seconds(1))
    }

    /// After a `Connection: close` response the server half-closes and drains what the peer
    /// still sends; the peer's FIN then makes a hang-up. The response must survive and the
    /// connection end cleanly. (The server also reads input to its end on a hang-up before
    /// closing; this test does not manage to leave more than one read's worth unread then.)
    @Test func hangUpWhileDrainingReadsInputToItsEndFirst() async throws {
        try await withTestServer({ $0.eventLoopCount = 1 }) { server, port in
            let c = try await RawClient.connect(port: port)
            var bytes = Array("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8)
            bytes += [UInt8](repeating: UInt8(ascii: "x"), count: 2 << 20)
            await c.send(bytes)
            shutdown(c.fd, Int32(SHUT_WR))
            try await Task.sleep(for: .milliseconds(300))
            let closed = await c.read(timeout: 3)
            let responses = c.responses()
            #expect(responses.first?.head.status == 200)
            #expect(closed, "clean end of input after the response")
            #expect(await Self.waitFor(2) { server.metrics.openConnections == 0 })
        }
    }

    /// A poller whose `epoll_wait` fails reports it and retries, and serves again once the
    /// call works; it does not end its thread (which would leave the loop's sockets unserved).
    @Test func pollerReportsAFailingWaitAndRetries() async throws {
        final class Flags: Sendable {
            let failuresLeft = Atomic<Int>(3)
            let delivered = Atomic<Bool>(false)
            let reports = Mutex<[String]>([])
        }
        let flags = Flags()
        let flaky: Poller.Wait = { fd, events, capacity, timeout in
            if flags.failuresLeft.wrappingSubtract(1, ordering: .relaxed).oldValue > 0 {
                errno = EIO
                return -1
            }
            return epoll_wait(fd, events, capacity, timeout)
        }
        let poller = try Poller(wait: flaky)
        // An eventfd of our own in the set, readable at once: the poller reports it once working.
        let ready = eventfd(1, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        #expect(ready >= 0)
        defer { close(ready) }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = 42
        #expect(epoll_ctl(poller.epollFD, EPOLL_CTL_ADD, ready, &event) == 0)
        try poller.run(name: "test.poller", report: { line in flags.reports.withLock { $0.append(line) } }) { events, count, _ in
            if (0..<count).contains(where: { events[$0].data.u64 == 42 }) { flags.delivered.store(true, ordering: .releasing) }
            return false  // ends the thread, which closes the set
        }
        #expect(await Self.waitFor(5) { flags.delivered.load(ordering: .acquiring) }, "the poller serves after its failures")
        let lines = flags.reports.withLock { $0 }
        #expect(lines.count == 2, "the first failure and the recovery, not every failure: \(lines)")
        #expect(lines.first?.contains("epoll_wait") == true && lines.first?.contains("errno \(EIO)") == true)
        #expect(lines.last?.contains("after 3 failure") == true)
    }
}
