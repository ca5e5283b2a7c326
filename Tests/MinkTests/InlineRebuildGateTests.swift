import Foundation
import Synchronization
import Testing

@testable import Mink

/// Counts the writes a test's gate let through.
private final class Passed: Sendable {
    private let count = Atomic<Int>(0)
    func add() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

@Suite("Inline rebuild gate", .timeLimit(.minutes(1)))
struct InlineRebuildGateTests {
    /// A write waiting for a rebuild to end gives up when its task is cancelled (before
    /// 2026-12-07 it waited for the whole rebuild whatever happened to its caller), having run
    /// nothing; so does a write whose task was cancelled before it came. The rebuild is not
    /// disturbed, and a later write passes once it ended.
    @Test func aWaitingWriteEndsWhenItsTaskIsCancelled() async throws {
        let gate = InlineRebuildGate()
        let release = AsyncStream<Void>.makeStream()
        let rebuilding = AsyncStream<Void>.makeStream()
        let rebuild = Task {
            try await gate.closed {
                rebuilding.continuation.yield()
                for await _ in release.stream { break }
            }
        }
        for await _ in rebuilding.stream { break }
        let passed = Passed()
        let writer = Task { try await gate.pass { passed.add() } }
        // Cancelled once it waits (not before: that is the case below).
        let parkedBy = ContinuousClock.now + .seconds(10)
        while gate.waitingCount == 0, ContinuousClock.now < parkedBy { try await Task.sleep(for: .milliseconds(5)) }
        #expect(gate.waitingCount == 1, "the write waits for the rebuild")
        writer.cancel()
        switch await writer.result {
        case .success: Issue.record("the cancelled write passed while the rebuild held the gate")
        case .failure(let error): #expect((error as? MinkError)?.code == .cancelled, "\(error)")
        }
        let late = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await gate.pass { passed.add() }
        }
        switch await late.result {
        case .success: Issue.record("an already cancelled write passed while the rebuild held the gate")
        case .failure(let error): #expect((error as? MinkError)?.code == .cancelled, "\(error)")
        }
        #expect(passed.value == 0)
        release.continuation.yield()
        try await rebuild.value
        try await gate.pass { passed.add() }
        #expect(passed.value == 1)
    }
}
