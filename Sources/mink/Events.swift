import ArgumentParser
import Foundation
import Mink
import MinkClient
import MinkWire

struct Append: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Append one event to a stream.")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The stream ID.") var stream: String
    @Option(help: "The event type.") var type: String
    @Option(help: "The event's data: any JSON value.") var data: String
    @Option(help: "The expected version: any (default), no_stream, stream_exists or a number.") var expected: String?
    @Option(help: "The event's ID (a UUID): makes a retry idempotent.") var id: String?
    @Option(help: "The event's metadata: a JSON object.") var metadata: String?

    func run() async throws {
        try await reportingErrors {
            var w = JSONWriter()
            w.beginObject()
            if let expected {
                w.key("expectedVersion")
                if let n = Int64(expected) { w.int(n) } else { w.string(expected) }
            }
            w.key("events")
            w.beginArray()
            w.beginObject()
            if let id { w.key("id"); w.string(id) }
            w.key("type"); w.string(type)
            w.key("data"); w.raw(try Self.json(data, "--data"))
            if let metadata { w.key("metadata"); w.raw(try Self.json(metadata, "--metadata")) }
            w.endObject()
            w.endArray()
            w.endObject()
            let client = try global.client()
            let result = try await client.callJSON("POST", ["v1", "streams", stream], body: w.bytes)
            if global.printsJSON { return Output.json(result) }
            let o = result.objectValue ?? [:]
            Output.line("appended to \(stream): version \(Output.cell(o["toVersion"])), position \(Output.cell(o["toPosition"]))")
        }
    }

    /// Checks that an option's text is JSON before sending it.
    static func json(_ text: String, _ option: String) throws -> RawJSON {
        do { return try RawJSON(validating: text) } catch {
            throw CLIError(code: "invalid_json", message: "\(option) is not valid JSON")
        }
    }
}

struct Read: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Read a stream's events.")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The stream ID.") var stream: String
    @Option(parsing: .unconditional, help: "The first version to read (backward: the newest to start from; -1 the last).") var from: Int64?
    @Option(help: "Read at most this many events (default: all).") var limit: Int?
    @Flag(help: "Newest first.") var backward = false

    func run() async throws {
        try await reportingErrors {
            let client = try global.client()
            var from = from ?? (backward ? -1 : 1)
            var left = limit ?? Int.max
            while left > 0 {
                var query = [("from", String(from)), ("limit", String(min(left, 1000)))]
                if backward { query.append(("direction", "backward")) }
                let bytes = try await client.call("GET", ["v1", "streams", stream], query: query)
                let page = try decode(StreamPage.self, bytes)
                for event in page.events.prefix(left) { Output.event(event, json: global.printsJSON) }
                left -= page.events.count
                guard let next = page.next, !page.events.isEmpty else { break }
                from = next
            }
        }
    }
}

struct Log: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Read the global log.")

    @OptionGroup var global: GlobalOptions
    @Option(help: "Start after this global position (default 0: the beginning).") var after: Int64 = 0
    @Option(help: "Only this category's streams.") var category: String?
    @Option(help: "Only these event types (comma-separated).") var type: String?
    @Option(help: "Read at most this many events (default: all).") var limit: Int?

    func run() async throws {
        try await reportingErrors {
            let client = try global.client()
            var after = after
            var left = limit ?? Int.max
            while left > 0 {
                var query = [("after", String(after)), ("limit", String(min(left, 1000)))]
                if let category { query.append(("category", category)) }
                if let type { query.append(("type", type)) }
                let page = try decode(EventsPage.self, try await client.call("GET", ["v1", "events"], query: query))
                for event in page.events.prefix(left) { Output.event(event, json: global.printsJSON) }
                left -= page.events.count
                if page.events.isEmpty || page.next <= after { break }
                after = page.next
            }
        }
    }
}

struct Tail: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Follow events live: all, stream S or category C (Ctrl-C ends).",
        discussion: "Reconnects after a lost connection with Last-Event-ID, so no event is printed twice or skipped."
    )

    @OptionGroup var global: GlobalOptions
    @Argument(help: "all (default), stream S, or category C.") var target: [String] = []
    @Option(help: "Start after this global position (a stream version for `stream S`); default: from the beginning.") var after: UInt64 = 0
    @Option(help: "Only these event types (comma-separated).") var type: String?

    func run() async throws {
        try await reportingErrors {
            let subscription: SubscriptionTarget
            switch target.count {
            case 0: subscription = .all
            case 1 where target[0] == "all": subscription = .all
            case 2 where target[0] == "stream": subscription = .stream(target[1])
            case 2 where target[0] == "category": subscription = .category(target[1])
            default: throw CLIError(code: "bad_request", message: "expected `all`, `stream S` or `category C`")
            }
            let client = try global.client()
            let types = type.map { $0.split(separator: ",").map(String.init) } ?? []
            let json = global.printsJSON
            // The client's subscription reconnects with Last-Event-ID and never delivers a
            // position at or before one it delivered: what is printed is printed once.
            for try await message in client.messages(subscription, after: after, eventTypes: types) {
                if case .event(let event) = message { Output.event(event, json: json) }
            }
        }
    }
}

/// Decodes a 2xx body of the API.
func decode<T: JSONReadable>(_ type: T.Type, _ bytes: [UInt8]) throws -> T {
    do { return try T(jsonBytes: bytes) } catch {
        throw CLIError(code: "invalid_json", message: "unexpected answer from the server: \(error)")
    }
}
