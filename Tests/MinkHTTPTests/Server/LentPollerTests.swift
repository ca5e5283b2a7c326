import CEpoll
import Dispatch
import Foundation
import Synchronization
import Testing
@testable import MinkHTTP

/// A serial queue as a task executor that can also run work inline on the calling thread
/// (as a PostgreSQL connection's queue does, `InlineTaskExecutor` in Mink).
final class InlineExecutor: TaskExecutor {
    let queue = DispatchQueue(label: "test.inline-executor")
    let queued = Atomic<Int>(0)
    let inlined = Atomic<Int>(0)

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queued.add(1, ordering: .relaxed)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    func runInline(_ body: () -> Void) {
        inlined.add(1, ordering: .relaxed)
        queue.sync(execute: body)
    }
}

/// Names ``executor`` for every request and lets the server run its jobs inline. Each response
/// is the kernel ID of the thread the handler ran on. `/block` holds that thread (a blocking
/// wait, as a storage call on a connection's queue does) until ``unblock()``.
final class InlineResponder: HTTPResponder {
    let executor = InlineExecutor()
    let entered: AsyncStream<Void>
    private let enteredContinuation: AsyncStream<Void>.Continuation
    private let gate = DispatchSemaphore(value: 0)

    init() { (entered, enteredContinuation) = AsyncStream.makeStream(of: Void.self) }

    func unblock() { gate.signal() }

    func route(_ request: HTTPRequest) -> HTTPRouting<String> { .inTask(request.path) }

    func executor(for routed: String) -> (any TaskExecutor)? { executor }

    func inlineRunner(for executor: any TaskExecutor) -> (@Sendable (() -> Void) -> Void)? {
        let e = self.executor
        return { body in e.runInline(body) }
    }

    func respond(to request: HTTPRequest, routed path: String) async -> HTTPResponse {
        let tid = cepoll_gettid()
        if path == "/block" {
            enteredContinuation.yield()
            // Bounded, so that a broken server fails the test instead of hanging it.
            _ = gate.wait(timeout: .now() + 10)
        }
        return HTTPResponse(status: 200, bytes: Array(String(tid).utf8))
    }

    func respond(to request: HTTPRequest) async -> HTTPResponse { HTTPResponse(status: 500) }
}

/// A lone request whose task's executor can run work inline is answered by the poller thread
/// itself (no thread woken for its task), while a standby thread takes over the polling.
@Suite(.timeLimit(.minutes(2))) struct LentPollerTests {
    static func threadName(_ tid: Int32) -> String? {
        (try? String(contentsOfFile: "/proc/self/task/\(tid)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func body(_ r: [(head: HTTPResponseHead, body: [UInt8])], _ i: Int) -> Int32? {
        r.count > i ? Int32(String(decoding: r[i].body, as: UTF8.self)) : nil
    }

    @Test func aLoneRequestIsAnsweredByThePollerThreadItself() async throws {
        let responder = InlineResponder()
        try await withTestServer({ $0.eventLoopCount = 1 }, responder: responder) { server, port in
            #expect(await EventLoopTests.waitFor(2) { server.pollerThreadIDs.count == 1 })
            let poller = try #require(server.pollerThreadIDs.first)
            let c = try await RawClient.connect(port: port)
            await c.send("GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
            let first = await c.readResponses(1, timeout: 5)
            #expect(first.first?.head.status == 200)
            #expect(Self.body(first, 0) == poller, "the handler ran on the poller thread")
            #expect(server.lentPollerRuns == 1)
            #expect(responder.executor.inlined.load(ordering: .relaxed) >= 1)
            #expect(responder.executor.queued.load(ordering: .relaxed) == 0, "no job went to the executor's own thread")

            // The standby now polls; the next lone request is answered by it, the first thread
            // waiting in its place (once it is back: a request arriving before would go to the
            // executor as usual).
            #expect(await EventLoopTests.waitFor(5) { server.standbyPollersWait })
            await c.send("GET /two HTTP/1.1\r\nHost: x\r\n\r\n")
            let second = await c.readResponses(2, timeout: 5)
            let standby = try #require(Self.body(second, 1))
            #expect(standby != poller)
            #expect(Self.threadName(standby) == "MinkHTTP.stby.0")
            #expect(server.lentPollerRuns == 2)
            // And the roles swap back.
            #expect(await EventLoopTests.waitFor(5) { server.standbyPollersWait })
            await c.send("GET /three HTTP/1.1\r\nHost: x\r\n\r\n")
            let third = await c.readResponses(3, timeout: 5)
            #expect(Self.body(third, 2) == poller, "1st \(poller) 2nd \(standby) 3rd \(String(describing: Self.body(third, 2))) \(Self.threadName(Self.body(third, 2) ?? 0) ?? "")")
            #expect(responder.executor.queued.load(ordering: .relaxed) == 0)
        }
    }

    /// While the lent thread is held by its request (blocked, as on a slow database), the other
    /// thread polls: another connection's request is read and answered. Without the standby it
    /// would wait for the held one.
    @Test func theStandbyPollsWhileTheLentThreadIsHeld() async throws {
        let responder = InlineResponder()
        try await withTestServer({ $0.eventLoopCount = 1 }, responder: responder) { server, port in
            let a = try await RawClient.connect(port: port)
            let b = try await RawClient.connect(port: port)
            await a.send("GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
            var entered = responder.entered.makeAsyncIterator()
            _ = await entered.next()
            #expect(server.lentPollerRuns == 1)
            await b.send("GET /quick HTTP/1.1\r\nHost: x\r\n\r\n")
            let quick = await b.readResponses(1, timeout: 5)
            #expect(quick.first?.head.status == 200, "a request was answered while the lent thread was held")
            responder.unblock()
            let held = await a.readResponses(1, timeout: 5)
            #expect(held.first?.head.status == 200)
        }
    }

    /// Both threads of a loop that lent itself end with the server.
    @Test func bothThreadsEndAtShutdown() async throws {
        let responder = InlineResponder()
        let threads = try await withTestServer({ $0.eventLoopCount = 1 }, responder: responder) { server, port in
            let c = try await RawClient.connect(port: port)
            var threads: Set<Int32> = []
            for i in 1...3 {
                #expect(await EventLoopTests.waitFor(5) { i == 1 || server.standbyPollersWait })
                await c.send("GET /n\(i) HTTP/1.1\r\nHost: x\r\n\r\n")
                let r = await c.readResponses(i, timeout: 5)
                if let tid = Self.body(r, i - 1) { threads.insert(tid) }
            }
            #expect(server.lentPollerRuns == 3)
            #expect(threads.count == 2, "the poller and its standby answered: \(threads)")
            #expect(threads.allSatisfy(EventLoopTests.threadExists))
            return threads
        }
        #expect(await EventLoopTests.waitFor(5) { !threads.contains(where: EventLoopTests.threadExists) })
    }
}
