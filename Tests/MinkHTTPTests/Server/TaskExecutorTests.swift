import Dispatch
import Synchronization
import Testing
@testable import MinkHTTP

/// A serial queue as a task executor that counts the jobs it ran.
final class CountingExecutor: TaskExecutor {
    let queue = DispatchQueue(label: "test.executor")
    let jobs = Atomic<Int>(0)
    private let key = DispatchSpecificKey<Bool>()

    init() { queue.setSpecific(key: key, value: true) }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        jobs.add(1, ordering: .relaxed)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    /// Whether the caller runs on the executor's queue.
    var isCurrent: Bool { DispatchQueue.getSpecific(key: key) == true }
}

/// Names ``executor`` for every request; `/wait/N` holds its task until `release` is signalled.
/// Each response says where its task ran (`on` the executor, or `off` it).
final class ExecutorResponder: HTTPResponder {
    let executor = CountingExecutor()
    let asked = Atomic<Int>(0)
    let entered: AsyncStream<Void>
    private let enteredContinuation: AsyncStream<Void>.Continuation
    let release: AsyncStream<Void>
    private let releaseContinuation: AsyncStream<Void>.Continuation

    init() {
        (entered, enteredContinuation) = AsyncStream.makeStream(of: Void.self)
        (release, releaseContinuation) = AsyncStream.makeStream(of: Void.self)
    }

    func signalRelease() { releaseContinuation.yield() }

    func route(_ request: HTTPRequest) -> HTTPRouting<String> { .inTask(request.path) }

    func executor(for routed: String) -> (any TaskExecutor)? {
        asked.add(1, ordering: .relaxed)
        return executor
    }

    func respond(to request: HTTPRequest, routed path: String) async -> HTTPResponse {
        if path.hasPrefix("/wait/") {
            enteredContinuation.yield()
            var it = release.makeAsyncIterator()
            _ = await it.next()
        }
        return HTTPResponse(status: 200, bytes: Array((executor.isCurrent ? "on" : "off").utf8))
    }

    func respond(to request: HTTPRequest) async -> HTTPResponse { HTTPResponse(status: 500) }
}

@Suite(.timeLimit(.minutes(2))) struct TaskExecutorTests {
    /// A request alone runs its task on the executor the responder names; one that arrives while
    /// another request's task runs is not given it (it would queue behind that request's work),
    /// and is answered from the global executor.
    @Test func aLoneRequestRunsOnTheResponderExecutor() async throws {
        let responder = ExecutorResponder()
        try await withTestServer(responder: responder) { _, port in
            let a = try await RawClient.connect(port: port)
            await a.send("GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
            let first = await a.readResponses(1, timeout: 5)
            #expect(first.map { String(decoding: $0.body, as: UTF8.self) } == ["on"])
            #expect(responder.asked.load(ordering: .relaxed) == 1)
            #expect(responder.executor.jobs.load(ordering: .relaxed) >= 1)

            // A request held in its task; a second one meanwhile is not alone.
            await a.send("GET /wait/1 HTTP/1.1\r\nHost: x\r\n\r\n")
            var entered = responder.entered.makeAsyncIterator()
            _ = await entered.next()
            let b = try await RawClient.connect(port: port)
            await b.send("GET /two HTTP/1.1\r\nHost: x\r\n\r\n")
            let second = await b.readResponses(1, timeout: 5)
            #expect(second.map { String(decoding: $0.body, as: UTF8.self) } == ["off"])
            #expect(responder.asked.load(ordering: .relaxed) == 2, "asked for the lone /wait/1 only, not for /two")
            responder.signalRelease()
            // (A client's responses accumulate: the second of `a`'s is the held one.)
            let held = await a.readResponses(2, timeout: 5)
            #expect(held.map { String(decoding: $0.body, as: UTF8.self) } == ["on", "on"])

            // Alone again once both are answered.
            await b.send("GET /three HTTP/1.1\r\nHost: x\r\n\r\n")
            let third = await b.readResponses(2, timeout: 5)
            #expect(third.map { String(decoding: $0.body, as: UTF8.self) } == ["off", "on"])
            #expect(responder.asked.load(ordering: .relaxed) == 3)
        }
    }
}
