import Foundation
import Mink
import MinkClient
import MinkTestFixtures
import Testing

@Suite("Export and import over HTTP", .timeLimit(.minutes(3)))
struct ClientExportImportTests {
    @Test func exportIntoAnotherTenantAndBack() async throws {
        try await withServer { server in
            let source = server.client(tenant: "source")
            for i in 0..<25 {
                try await source.append("order-\(i % 4)", [OrderCreated(customerID: "c-\(i)")], metadata: Metadata(userID: "u", custom: ["i": "\(i)"]))
            }
            var events: [Event] = []
            for try await e in source.export() { events.append(e) }
            #expect(events.map(\.globalPosition) == Array(1...25))
            var lines: [UInt8] = []
            for try await line in source.exportLines(after: 20) { lines += line + [0x0A] }
            #expect(String(decoding: lines, as: UTF8.self).split(separator: "\n").count == 5)

            let target = server.client(tenant: "target")
            let summary = try await target.importEvents(events)
            #expect(summary == ImportSummary(events: 25, streams: 4, head: 25))
            var copied: [Event] = []
            for try await e in target.export() { copied.append(e) }
            #expect(copied == events)
            #expect(try await target.headPosition() == 25)

            do {
                try await target.importEvents(events)
                Issue.record("a second import into a tenant with events must fail")
            } catch let e as MinkError {
                #expect(e.code == .tenantNotEmpty, "\(e)")
            }
            var broken = events
            broken[4].version = 9  // order-0's second event
            do {
                try await server.client(tenant: "third").importEvents(broken)
                Issue.record("non-consecutive versions must fail")
            } catch let e as MinkError {
                #expect(e.code == .badRequest && e.message.contains("line 5"), "\(e)")
            }
            #expect(try await server.client(tenant: "third").headPosition() == 0)
        }
    }
}
