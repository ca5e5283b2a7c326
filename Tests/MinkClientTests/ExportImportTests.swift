import Foundation
import Mink
import MinkClient
import MinkHTTP
import MinkTestFixtures
import Testing

@Suite("Export and import over HTTP", .timeLimit(.minutes(3)))
struct ClientExportImportTests {
    /// A line that is not an event (a proxy's page, a truncated line) ends the export with a
    /// `MinkError`, as every failure of the client does, after the events before it.
    @Test func aMalformedExportLineIsASerializationError() async throws {
        let server = HTTPServer(
            configuration: HTTPServerConfiguration(host: "127.0.0.1", port: 0),
            responder: HTTPClosureResponder { _ in
                let good = #"{"id":"0b6a8f7e-1d2c-4b5a-9e8f-7a6b5c4d3e2f","streamId":"order-1","type":"A","data":{},"metadata":{},"version":1,"globalPosition":1,"timestamp":"2026-12-07T12:00:00.000000Z"}"#
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: "application/x-ndjson")
                return HTTPResponse(status: 200, headers: headers, bytes: Array((good + "\n<html>\n").utf8))
            }
        )
        let port = try server.start()
        let client = MinkClient(host: "127.0.0.1", port: port, token: "t", registry: orderRegistry())
        defer { client.shutdown() }
        var received = 0
        do {
            for try await _ in client.export() { received += 1 }
            Issue.record("a malformed line ended the export without an error")
        } catch let error as MinkError {
            #expect(error.code == .serializationFailed, "\(error)")
        }
        #expect(received == 1)
        await server.shutdown(gracePeriod: .milliseconds(100))
    }

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
