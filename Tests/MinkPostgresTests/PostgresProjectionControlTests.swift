import Foundation
@testable import Mink
import MinkPostgres
import Testing

/// Projection pause and resume recorded in PostgreSQL (`<projection>#control`) by processes at
/// once: READ COMMITTED lets two read-then-write transactions record the same sequence; the
/// tenant's append lock they take first keeps them apart.
@Suite("PostgreSQL: projection control", .timeLimit(.minutes(2)))
struct PostgresProjectionControlTests {
    struct Counted: InlineProjection, ReadModelProjection {
        var name: String { "counted" }
        var handledEvents: [String] { ["Happened"] }
        var readModelName: String { "counts" }
        func apply(_ event: Event, in tx: any ReadModelTransaction) throws {
            try tx.putDocument(readModelName, id: event.streamID, json: Data(#"{"n":1}"#.utf8))
        }
    }

    struct NeverGranted: ProjectionLeaseProvider {
        func tryAcquire(tenant: String, projection: String) async throws -> (any ProjectionLease)? { nil }
    }

    static func controller(_ storage: PostgresStorage, _ store: EventStore) -> ReadModelProjectionController {
        ReadModelProjectionController(
            projection: Counted(), mode: .async, store: store, readModels: storage, options: AsyncOptions(),
            leases: NeverGranted(), leaseRetryInterval: .milliseconds(50)
        )
    }

    @Test func concurrentRequestsThroughTwoStoragesGetTheirOwnSequence() async throws {
        let schema = TestServer.freshName()
        let one = try await TestServer.storage(schema: schema)
        let two = try await TestServer.storage(schema: schema)
        defer { Task { await one.shutdown(); await two.shutdown() } }
        let a = Self.controller(one, EventStore(adapter: one)), b = Self.controller(two, EventStore(adapter: two))
        for round in 0..<30 {
            async let x: Void = a.pause()
            async let y: Void = b.resume()
            _ = try await (x, y)
            let stored = try await one.transaction { tx in try ReadModelProjectionController.Control.read("counted", in: tx) }
            #expect(stored.sequence == UInt64(2 * round + 2), "round \(round): two requests, two sequences: \(stored)")
        }
    }
}
