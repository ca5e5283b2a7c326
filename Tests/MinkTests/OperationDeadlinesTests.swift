import Foundation
@testable import Mink
import MinkTestFixtures
import Synchronization
import Testing

/// The callers' side of the storage deadline: each policy answers when it says it does.
@Suite("operation deadlines", .timeLimit(.minutes(3)))
struct OperationDeadlinesTests {
    /// Runs an operation whose worker is `work` (on a thread of its own, given the answer) and
    /// returns its outcome and how long the caller waited.
    /// - Parameter started: the operation starts at once (before the worker thread runs).
    private func run(
        _ deadlines: OperationDeadlines, policy: DeadlinePolicy, started: Bool = true,
        work: @escaping @Sendable (DeadlineAnswer<Int>) -> Void
    ) async -> (Result<Int, any Error>, Duration) {
        let start = ContinuousClock.now
        // When the caller was answered, seen from a thread of its own: how long the awaiting task
        // then takes to resume depends on Swift's cooperative pool, which a full test run keeps
        // busy for seconds; the answer itself is what the deadline promises.
        let answeredAfter = Mutex<Duration?>(nil)
        let result: Result<Int, any Error>
        do {
            let value = try await withUnsafeThrowingContinuation { (c: UnsafeContinuation<Int, any Error>) in
                let answer = deadlines.answer(c, policy: policy)
                if started { #expect(answer.start()) }
                Thread.detachNewThread { work(answer) }
                Thread.detachNewThread {
                    let limit = ContinuousClock.now.advanced(by: .seconds(30))
                    while !answer.isAnswered, ContinuousClock.now < limit { usleep(2_000) }
                    answeredAfter.withLock { $0 = start.duration(to: .now) }
                }
            }
            result = .success(value)
        } catch {
            result = .failure(error)
        }
        let deadline = Deadline(.seconds(40))
        // The watcher sets it within milliseconds of the answer (which came before this task
        // resumed); the bound only keeps a broken watcher from hanging the test.
        while answeredAfter.withLock({ $0 }) == nil {
            do { try deadline.check("the watcher") } catch { break }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return (result, answeredAfter.withLock { $0 } ?? start.duration(to: .now))
    }

    @Test func aQueuedOperationIsAnsweredAtItsDeadlineAndThenNeverStarts() async throws {
        let deadlines = OperationDeadlines(timeout: .milliseconds(200), storage: "Test")
        let startedLate = Cell()
        let (result, waited) = await run(deadlines, policy: .always, started: false) { answer in
            // The worker is busy elsewhere for much longer than the deadline.
            usleep(8_000_000)
            startedLate.set(answer.start() ? 1 : 0)
        }
        let error = try #require(result.failureError as? MinkError)
        #expect(error.code == .unavailable && error.isTransient)
        #expect(error.message == "Test did not answer within 0.2 s; nothing was done")
        // Not a speed target: at the deadline, long before the worker (generous for a busy machine).
        #expect(waited >= .milliseconds(200) && waited < .seconds(5), "\(waited)")
        let deadline = Deadline(.seconds(20))
        while startedLate.value < 0 {
            try deadline.check("the worker's start")
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(startedLate.value == 0, "an operation answered while queued must not start")
    }

    @Test func anOperationUnderWayIsAnsweredAtItsDeadlineAndItsOutcomeIsDropped() async throws {
        let deadlines = OperationDeadlines(timeout: .milliseconds(200), storage: "Test")
        let late = Cell()
        let (result, waited) = await run(deadlines, policy: .always) { answer in
            usleep(8_000_000)
            late.set(answer.resume(with: .success(1)) ? 1 : 0)
        }
        let error = try #require(result.failureError as? MinkError)
        #expect(error.code == .unavailable)
        #expect(error.message.contains("may still complete"), "\(error.message)")
        #expect(waited < .seconds(5), "\(waited)")
        let deadline = Deadline(.seconds(20))
        while late.value < 0 {
            try deadline.check("the late outcome")
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(late.value == 0, "the late outcome answered nobody")
    }

    @Test func outsideBodyWaitsForTheBodyThenAnswersAtOnce() async throws {
        let deadlines = OperationDeadlines(timeout: .milliseconds(200), storage: "Test")
        let answeredDuringBody = Cell()
        let (result, waited) = await run(deadlines, policy: .outsideBody) { answer in
            usleep(500_000)
            answeredDuringBody.set(answer.isAnswered ? 1 : 0)
            answer.bodyReturned()
            // What remains (a commit) takes long: the caller does not wait for it.
            usleep(4_000_000)
            answer.resume(with: .success(1))
        }
        #expect((result.failureError as? MinkError)?.code == .unavailable)
        #expect(answeredDuringBody.value == 0, "answered while the body ran")
        #expect(waited >= .milliseconds(500) && waited < .milliseconds(4000), "\(waited)")
    }

    @Test func untilStartedWaitsForTheOutcomeOnceStarted() async throws {
        let deadlines = OperationDeadlines(timeout: .milliseconds(200), storage: "Test")
        let (result, waited) = await run(deadlines, policy: .untilStarted) { answer in
            usleep(600_000)
            answer.bodyReturned()
            answer.resume(with: .success(7))
        }
        #expect(try result.get() == 7)
        #expect(waited >= .milliseconds(600))
    }

    /// Operations answered by their outcome are forgotten as new ones arrive: the list stays
    /// about as long as what is in flight, whatever the throughput.
    @Test func answeredOperationsAreForgotten() async throws {
        let deadlines = OperationDeadlines(timeout: .seconds(30), storage: "Test")
        for i in 0..<2_000 {
            let value = try await withUnsafeThrowingContinuation { (c: UnsafeContinuation<Int, any Error>) in
                deadlines.answer(c).resume(with: .success(i))
            }
            #expect(value == i)
        }
        #expect(deadlines.trackedCount <= 1)
    }
}

/// An integer shared with a worker thread (-1 until set).
private final class Cell: Sendable {
    private let atomic = Atomic<Int>(-1)
    func set(_ v: Int) { atomic.store(v, ordering: .relaxed) }
    var value: Int { atomic.load(ordering: .relaxed) }
}

extension Result {
    fileprivate var failureError: Failure? {
        if case .failure(let e) = self { return e }
        return nil
    }
}
