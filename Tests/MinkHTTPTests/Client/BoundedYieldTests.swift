import Synchronization
import Testing

@testable import MinkHTTP

/// The bounded hand-off the client's streams use: a producer ahead of its consumer by the buffer's
/// size waits instead of piling elements up, and nothing is dropped.
@Suite(.timeLimit(.minutes(1))) struct BoundedYieldTests {
    @Test func aProducerWaitsForItsConsumerAndDropsNothing() async throws {
        let (stream, continuation) = AsyncThrowingStream<Int, any Error>.makeStream(bufferingPolicy: .bufferingOldest(4))
        let sent = Atomic<Int>(0)
        let producer = Task {
            for i in 0..<1000 {
                guard try await continuation.send(i) else { return }
                sent.add(1, ordering: .relaxed)
            }
            continuation.finish()
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(sent.load(ordering: .relaxed) <= 5, "the producer waits for the consumer: \(sent.load(ordering: .relaxed)) sent")
        var received: [Int] = []
        for try await i in stream { received.append(i) }
        #expect(received == Array(0..<1000), "every element, in order")
        try await producer.value
    }

    @Test func aGoneConsumerEndsTheProducer() async throws {
        let (stream, continuation) = AsyncThrowingStream<Int, any Error>.makeStream(bufferingPolicy: .bufferingOldest(2))
        let producer = Task { () -> Bool in
            for i in 0..<1000 where try await !continuation.send(i) { return true }
            return false
        }
        var it = stream.makeAsyncIterator()
        _ = try await it.next()
        continuation.finish()  // as the stream's termination does when its consumer stops
        #expect(try await producer.value, "send reported the end instead of waiting for ever")
    }
}
