import Foundation
import Mink
import Synchronization

/// Ambiguous commits of projection batches: a read-model transaction may commit although its
/// caller got an error (a storage timeout after `COMMIT` was sent). The runner then retries the
/// batch; the retry must find the moved checkpoint and apply nothing twice. Part of
/// ``AdapterConformance/cases``.
extension AdapterConformance {
    static let projectionRetryCases: [Case] = [
        Case(name: "a projection batch retried after its commit's answer was lost applies each event once", body: lostCommitAnswer),
    ]
}

private func prCheck(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #filePath, line: UInt = #line) throws {
    if !condition { throw ConformanceFailure(message(), file: file, line: line) }
}

/// Records, per stream, the positions of the events applied to it and their count: applying an
/// event twice shows.
private struct TallyProjection: InlineProjection, ReadModelProjection {
    var name: String { "tally" }
    var handledEvents: [String] { ["Counted"] }
    var readModelName: String { "tallies" }

    struct Tally: Codable, Equatable {
        var count = 0
        var positions: [UInt64] = []
    }

    func apply(_ event: Event, in tx: any ReadModelTransaction) throws {
        var tally = try tx.document(readModelName, id: event.streamID).map { try JSONDecoder().decode(Tally.self, from: $0) } ?? Tally()
        tally.count += 1
        tally.positions.append(event.globalPosition)
        try tx.putDocument(readModelName, id: event.streamID, json: try JSONEncoder().encode(tally))
    }
}

/// The real read-model storage, except that the first transaction that moves a checkpoint
/// commits and then throws a transient `.unavailable`, as a storage timeout that struck after
/// `COMMIT` was sent does: the caller cannot tell that it committed.
private final class LostCommitAnswer: ForwardingReadModelStore, @unchecked Sendable {
    let lost = Mutex(0)

    override func transaction<T: Sendable>(
        _ durability: CommitDurability, _ body: @Sendable (any ReadModelTransaction) throws -> T
    ) async throws -> T {
        let wrote = Flag()
        let value = try await inner.transaction(durability) { tx in
            try body(CheckpointWatch(tx, wrote: { wrote.set() }))
        }
        let lose = wrote.isSet && lost.withLock { n in
            defer { n += 1 }
            return n == 0
        }
        if lose { throw MinkError(.unavailable, "no answer within the storage timeout (the commit went through)", isTransient: true) }
        return value
    }
    override func wrapping(_ tenantStore: any ReadModelStore) -> any ReadModelStore { LostCommitAnswer(tenantStore) }
}

private final class Flag: Sendable {
    private let value = Atomic(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}

/// Passes every call on to the storage's transaction and reports checkpoint writes.
private final class CheckpointWatch: ReadModelTransaction {
    let tx: any ReadModelTransaction
    let wrote: () -> Void

    init(_ tx: any ReadModelTransaction, wrote: @escaping () -> Void) {
        self.tx = tx
        self.wrote = wrote
    }

    func document(_ model: String, id: String) throws -> Data? { try tx.document(model, id: id) }
    func putDocument(_ model: String, id: String, json: Data) throws { try tx.putDocument(model, id: id, json: json) }
    func deleteDocument(_ model: String, id: String) throws { try tx.deleteDocument(model, id: id) }
    func documents(_ model: String, ids: [String]) throws -> [String: Data] { try tx.documents(model, ids: ids) }
    func putDocuments(_ model: String, _ documents: [(id: String, json: Data)]) throws { try tx.putDocuments(model, documents) }
    func deleteDocuments(_ model: String, ids: [String]) throws { try tx.deleteDocuments(model, ids: ids) }
    func checkpoint(_ projection: String) throws -> UInt64 { try tx.checkpoint(projection) }
    func setCheckpoint(_ projection: String, to position: UInt64) throws {
        try tx.setCheckpoint(projection, to: position)
        wrote()
    }
    func excludeAppends() throws { try tx.excludeAppends() }
}

private func lostCommitAnswer(_ s: ConformanceStorage) async throws {
    let store = EventStore(adapter: s.events)
    var expected: [String: TallyProjection.Tally] = [:]
    for round in 0..<4 {
        for k in 0..<3 {
            let stream = "tally-\(k)"
            let r = try await store.append(stream, events: [EventData(type: "Counted", data: Data(#"{"round":\#(round)}"#.utf8))])
            expected[stream, default: .init()].count += 1
            expected[stream, default: .init()].positions.append(r.fromPosition)
        }
    }
    let head = try await s.events.headPosition()
    let readModels = LostCommitAnswer(s.readModels)
    let engine = ProjectionEngine(store: store, readModels: readModels)
    // One batch holds every event: its commit's answer is lost, and the runner retries it.
    await engine.registerAsync(
        TallyProjection(), readModels: readModels,
        options: AsyncOptions(batchSize: 100, retryPolicy: RetryPolicy(maxAttempts: 5, initialBackoff: .milliseconds(5)))
    )
    try await engine.start()
    let status = try await engine.waitUntilCaughtUp("tally", to: head, timeout: .seconds(60))
    await engine.stop()
    try prCheck(readModels.lost.withLock { $0 } >= 1, "no commit answer was lost: the case checked nothing")
    try prCheck(status.state == .running && status.checkpoint == head, "runner \(status.state) at \(status.checkpoint), head \(head)")
    try prCheck(try await s.readModels.checkpoint("tally") == head, "stored checkpoint")
    for (stream, want) in expected {
        let got = try await s.readModels.document("tallies", id: stream).map { try JSONDecoder().decode(TallyProjection.Tally.self, from: $0) }
        try prCheck(got == want, "\(stream): \(String(describing: got)), event by event: \(want)")
    }
}
