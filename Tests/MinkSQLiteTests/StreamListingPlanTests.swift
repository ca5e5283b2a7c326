import Foundation
import Mink
import MinkSQLite
import Testing

/// A page of the stream listing is one range of mink_streams' primary key (HTTP-API.md section
/// 5: listing pages through a million streams in constant memory, with no full scan per page):
/// SQLite's plan searches the key, never scans the table and never sorts.
@Suite("SQLite stream listing plan", .timeLimit(.minutes(3)))
struct StreamListingPlanTests {
    @Test func aPageIsAPrimaryKeyRangeNeverAScanOrASort() async throws {
        let (storage, dir) = try await SQLiteStorage.temporary()
        defer { dir.remove() }
        for i in 0..<50 { try await storage.append("s-\(i)", [ev("A")]) }
        try await storage.append("other", [ev("A")])
        let queries = [
            StreamListQuery(limit: 1000),
            StreamListQuery(after: "s-25", limit: 1000),
            StreamListQuery(prefix: "s-1", limit: 100),
            StreamListQuery(category: "s", after: "s-1", limit: 100),
        ]
        for query in queries {
            let plan = try await storage.listStreamsQueryPlan(query)
            #expect(plan.contains { $0.hasPrefix("SEARCH s USING PRIMARY KEY (tenant_id=?") }, "\(query): \(plan)")
            #expect(!plan.contains { $0.hasPrefix("SCAN") }, "no full scan: \(query): \(plan)")
            #expect(!plan.contains { $0.contains("TEMP B-TREE") }, "no sort: \(query): \(plan)")
        }
        // The listing itself, for the same queries, agrees with the in-memory rule.
        let all = try await storage.listStreams(StreamListQuery(limit: 1000)).map(\.streamID)
        #expect(all.count == 51 && all == all.sorted { StreamID.bytewiseLess($0, $1) })
        await storage.close()
    }
}
