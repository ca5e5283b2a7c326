#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import MinkHTTP

/// Sockets must not leak into child processes.
///
/// Regression: the transport's sockets were created without `SOCK_CLOEXEC`, so a child started
/// by another part of the process (in the full test run: `pg_ctl start` of the PostgreSQL
/// restart test, whose daemon lives until the end) inherited every socket open at that moment.
/// Closing our descriptor then closed nothing: the server never saw EOF on a cancelled event
/// stream (it kept writing keepalives into the child's copy), and a listener shut down in this
/// process kept accepting connections that nobody answered (a timeout instead of
/// `ECONNREFUSED`). Each live test starts such a child itself, so it needs no other suite.
@Suite(.timeLimit(.minutes(3))) struct ChildProcessTests {
    /// Starts `/bin/sleep 30` with `posix_spawn` and no file actions: it inherits every
    /// descriptor of this process that is not close-on-exec, like `pg_ctl start` did.
    static func withChild<T>(_ body: () async throws -> T) async throws -> T {
        var pid: pid_t = 0
        let argv = ["/bin/sleep", "30"]
        var cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        let rc = posix_spawn(&pid, "/bin/sleep", nil, nil, &cArgs, environ)
        try #require(rc == 0, "posix_spawn failed: \(rc)")
        defer {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        }
        return try await body()
    }

    @Test func everySocketIsCloseOnExec() throws {
        func isCloseOnExec(_ fd: Int32) -> Bool { fcntl(fd, F_GETFD) & FD_CLOEXEC != 0 }
        let (listener, port) = try Socket.listen(host: "127.0.0.1", port: 0, backlog: 8)
        defer { Socket.close(listener) }
        #expect(isCloseOnExec(listener))
        let (client, _) = try Socket.connect(host: "127.0.0.1", port: port)
        defer { Socket.close(client) }
        #expect(isCloseOnExec(client))
        var accepted: Int32?
        for _ in 0..<200 where accepted == nil {
            accepted = try Socket.accept(listener)?.fd
            if accepted == nil { usleep(5_000) }
        }
        let fd = try #require(accepted)
        defer { Socket.close(fd) }
        #expect(isCloseOnExec(fd))
        #expect(fcntl(fd, F_GETFL) & O_NONBLOCK != 0)
    }

    @Test func cancelledEventStreamEndsOnTheServerDespiteAChildProcess() async throws {
        try await withTestServer { server, port in
            let client = HTTPClient()
            let consumer = Task {
                for try await _ in client.events(host: "127.0.0.1", port: port, target: "/forever") {}
            }
            for _ in 0..<200 where server.metrics.activeStreams == 0 {
                try await Task.sleep(for: .milliseconds(10))
            }
            try #require(server.metrics.activeStreams == 1)
            try await Self.withChild {
                consumer.cancel()
                _ = await consumer.result
                // The client closed its socket: the server sees EOF (or a reset) and ends the stream.
                for _ in 0..<150 where server.metrics.activeStreams > 0 {
                    try await Task.sleep(for: .milliseconds(20))
                }
                #expect(server.metrics.activeStreams == 0, "the stream outlived the client's socket")
            }
        }
    }

    @Test func connectingToAServerShutDownDespiteAChildProcessIsRefusedAtOnce() async throws {
        var configuration = HTTPServerConfiguration(host: "127.0.0.1", port: 0)
        configuration.tickInterval = .milliseconds(20)
        let server = HTTPServer(configuration: configuration, responder: TestResponder())
        let port = try server.start()
        try await Self.withChild {
            await server.shutdown(gracePeriod: .milliseconds(100))
            let client = HTTPClient(configuration: HTTPClientConfiguration(connectTimeout: .seconds(3), readTimeout: .seconds(3)))
            defer { client.shutdown() }
            let started = ContinuousClock.now
            await #expect(throws: SocketError(call: "connect", errno: ECONNREFUSED)) {
                _ = try await client.execute(HTTPClientRequest(host: "127.0.0.1", port: port, target: "/healthz"))
            }
            #expect(ContinuousClock.now - started < .seconds(1))
        }
    }
}
