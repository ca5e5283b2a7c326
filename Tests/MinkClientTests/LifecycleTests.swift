import Foundation
import Mink
import MinkClient
import MinkTestFixtures
import Testing

@Suite("Stream listing, deletion and retention from the client", .timeLimit(.minutes(3)))
struct LifecycleTests {
    @Test func listPagesDeleteAndRetention() async throws {
        try await withServer { server in
            let client = server.client()
            for i in 0..<5 { try await client.append("order-\(i)", events: [raw("A", "{}")]) }
            try await client.append("user-1", events: [raw("A", "{}")])

            let page = try await client.listStreams(StreamListQuery(category: "order", limit: 2))
            #expect(page.streams.map(\.streamID) == ["order-0", "order-1"] && page.next == "order-1")
            var all: [String] = []
            for try await info in client.streams(category: "order", pageSize: 2) { all.append(info.streamID) }
            #expect(all == (0..<5).map { "order-\($0)" })

            let soft = try await client.deleteStream("order-0", expectedVersion: .exact(1))
            #expect(soft.deletedEvents == 1 && soft.lastVersion == 1 && !soft.hard && soft.position == 7)
            #expect(try await client.streamInfo("order-0") == nil)
            let hard = try await client.deleteStream("order-1", hard: true)
            #expect(hard.hard)
            do {
                _ = try await client.load("order-1")
                Issue.record("a tombstoned stream loaded")
            } catch let e as MinkError {
                #expect(e.code == .streamDeleted && e.streamID == "order-1")
            }
            do {
                try await client.deleteStream("order-9")
                Issue.record("deleting a missing stream succeeded")
            } catch let e as MinkError {
                #expect(e.code == .streamNotFound)
            }

            #expect(try await client.retention(of: "tele-1") == StreamRetention())
            let stored = try await client.setRetention(StreamRetention(maxCount: 1), of: "tele-1")
            #expect(stored == StreamRetention(maxCount: 1))
            try await client.append("tele-1", events: [raw("T", "{}"), raw("T", "{}"), raw("T", "{}")])
            #expect(try await client.load("tele-1").map(\.version) == [3])
            #expect(try await client.scavenge() == 2)
        }
    }
}
