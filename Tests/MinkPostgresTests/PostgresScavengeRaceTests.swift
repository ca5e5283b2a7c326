import Foundation
import Mink
@testable import MinkPostgres
import Testing

/// A scavenger pass racing a stream's deletion (or another pass) on PostgreSQL: both delete the
/// same rows, and without one order between them PostgreSQL found a deadlock and aborted one
/// (`40P01`, answered `503` though storage was healthy — a black-box audit saw it in 9 rounds of
/// 20). Scavenger batches now take the tenant's append lock, as a deletion does.
@Suite("PostgreSQL scavenger races", .timeLimit(.minutes(3)))
struct PostgresScavengeRaceTests {
    @Test func aScavengeRacingADeletionOrAnotherScavengeNeverDeadlocks() async throws {
        let s = try await TestServer.storage()
        defer { Task { await s.shutdown() } }
        let payload = Data(#"{"n":1}"#.utf8)
        for round in 0..<6 {
            let stream = "big-\(round)"
            for _ in 0..<3 {
                let events = (0..<1000).map { _ in EventData(type: "E", data: payload) }
                _ = try await s.append(AppendRequest(streamID: stream, events: events, expectedVersion: .any), hook: nil)
            }
            _ = try await s.append(AppendRequest(streamID: "zz-\(round)", events: [EventData(type: "E", data: payload)], expectedVersion: .any), hook: nil)
            try await s.setStreamRetention(stream, StreamRetention(maxCount: 1))
            // Two scavenger passes and the stream's deletion at once; each must succeed.
            async let a = s.scavengeBatch(now: Date(), limit: 5000)
            async let b = s.scavengeBatch(now: Date(), limit: 5000)
            async let deletion = s.deleteStream(stream, expectedVersion: .any, hard: round % 2 == 0, hook: nil)
            let removedA = try await a, removedB = try await b
            let deleted = try await deletion
            #expect(removedA + removedB + Int(deleted.deletedEvents) == 3000, "round \(round): every event removed once")
            #expect(try await s.readStream(stream, from: 1, limit: 10, direction: .forward).isEmpty)
        }
    }
}
