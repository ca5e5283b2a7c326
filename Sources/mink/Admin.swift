import ArgumentParser
import Foundation
import Mink
import MinkClient

struct Streams: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List streams, show one, delete one.", subcommands: [List.self, Info.self, Remove.self], defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List streams (every page).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only this category.") var category: String?
        @Option(help: "Only stream IDs starting with this.") var prefix: String?

        func run() async throws {
            try await reportingErrors {
                let client = try global.client()
                var after: String?
                var rows: [[String]] = []
                repeat {
                    var query = [("limit", "1000")]
                    if let category { query.append(("category", category)) }
                    if let prefix { query.append(("prefix", prefix)) }
                    if let after { query.append(("after", after)) }
                    let page = try await client.callJSON("GET", ["v1", "streams"], query: query).objectValue ?? [:]
                    for stream in page["streams"]?.arrayValue ?? [] {
                        if global.printsJSON { Output.json(stream); continue }
                        let o = stream.objectValue ?? [:]
                        rows.append(["streamId", "category", "version", "eventCount", "updatedAt"].map { Output.cell(o[$0]) })
                    }
                    after = page["next"]?.stringValue
                } while after != nil
                if !global.printsJSON { Output.table(["STREAM", "CATEGORY", "VERSION", "EVENTS", "UPDATED"], rows) }
            }
        }
    }

    struct Info: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A stream's version, event count and times.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The stream ID.") var stream: String

        func run() async throws {
            try await reportingErrors {
                let info = try await global.client().callJSON("GET", ["v1", "streams", stream, "info"])
                if global.printsJSON { return Output.json(info) }
                let o = info.objectValue ?? [:]
                Output.table(["FIELD", "VALUE"], ["streamId", "category", "version", "eventCount", "createdAt", "updatedAt"].map { [$0, Output.cell(o[$0])] })
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Delete a stream (soft; --hard leaves a tombstone).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The stream ID.") var stream: String
        @Flag(help: "Hard delete: the stream can never be written or read again.") var hard = false
        @Option(help: "Delete only if the stream's version is this.") var expected: String?

        func run() async throws {
            try await reportingErrors {
                var query: [(String, String)] = [("hard", hard ? "true" : "false")]
                if let expected { query.append(("expectedVersion", expected)) }
                let result = try await global.client().callJSON("DELETE", ["v1", "streams", stream], query: query)
                if global.printsJSON { return Output.json(result) }
                let o = result.objectValue ?? [:]
                Output.line("deleted \(stream)\(hard ? " (hard)" : ""): \(Output.cell(o["deletedEvents"])) events")
            }
        }
    }
}

struct QueryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query", abstract: "Query a read model.",
        discussion: """
            Each --where is `FIELD OP VALUE` (OP: = != > >= < <= in, not in, like, contains, between, \
            is null, is not null); VALUE is JSON when it parses as JSON, else a string. The --where \
            filters before an --or are ANDed; --or starts another group, and the groups are ORed: \
            mink query orders --where 'status = pending' --where 'total > 100' --or --where 'priority = high'
            """
    )

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The read model.") var model: String
    @Option(name: .customLong("where"), help: "A filter: FIELD OP VALUE.") var filters: [String] = []
    @Flag(name: .customLong("or"), help: "Start another group of filters (ORed with the previous ones).") var orCount: Int
    // `.unconditional`: `--order -createdAt` is a value, not an unknown flag.
    @Option(parsing: .unconditionalSingleValue, help: "Order by a field; a leading - is descending (-createdAt). Repeatable.") var order: [String] = []
    @Option(help: "At most this many documents.") var limit: Int?
    @Option(help: "Skip this many documents.") var offset: Int?

    static let operators = ["is not null", "is null", "not in", ">=", "<=", "!=", "=", ">", "<", "in", "like", "contains", "between"]

    /// Parses `FIELD OP VALUE`.
    static func filter(_ text: String) throws -> JSONValue {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let space = trimmed.firstIndex(of: " ") else {
            throw CLIError(code: "invalid_query", message: "expected FIELD OP VALUE in --where '\(text)'")
        }
        let field = String(trimmed[..<space])
        let rest = trimmed[space...].trimmingCharacters(in: .whitespaces)
        for op in operators where rest.lowercased() == op || rest.lowercased().hasPrefix(op + " ") {
            var object: [String: JSONValue] = ["field": .string(field), "op": .string(op)]
            let valueText = rest.dropFirst(op.count).trimmingCharacters(in: .whitespaces)
            if op == "is null" || op == "is not null" { return .object(object) }
            guard !valueText.isEmpty else { throw CLIError(code: "invalid_query", message: "no value in --where '\(text)'") }
            object["value"] = (try? JSONValue(json: Data(valueText.utf8))) ?? .string(valueText)
            return .object(object)
        }
        throw CLIError(code: "invalid_query", message: "no known operator in --where '\(text)'")
    }

    /// The groups in the order given on the command line: ArgumentParser keeps each option's
    /// values in order, not how `--where` and `--or` interleave, so that is read from the raw
    /// arguments.
    func groups() throws -> [[JSONValue]] {
        var groups: [[JSONValue]] = [[]]
        var next = filters.makeIterator()
        var args = CommandLine.arguments.dropFirst().makeIterator()
        while let arg = args.next() {
            if arg == "--or" {
                groups.append([])
            } else if arg == "--where" {
                _ = args.next()
                if let f = next.next() { groups[groups.count - 1].append(try Self.filter(f)) }
            } else if arg.hasPrefix("--where=") {
                if let f = next.next() { groups[groups.count - 1].append(try Self.filter(f)) }
            }
        }
        return groups.filter { !$0.isEmpty }
    }

    func run() async throws {
        try await reportingErrors {
            var body: [String: JSONValue] = ["where": .array(try groups().map { .array($0) })]
            if !order.isEmpty {
                body["orderBy"] = .array(order.map { o in
                    o.hasPrefix("-") ? .object(["field": .string(String(o.dropFirst())), "desc": .bool(true)]) : .object(["field": .string(o)])
                })
            }
            if let limit { body["limit"] = .int(Int64(limit)) }
            if let offset { body["offset"] = .int(Int64(offset)) }
            let result = try await global.client().callJSON(
                "POST", ["v1", "readmodels", model, "query"], body: [UInt8](JSONValue.object(body).jsonData())
            )
            let items = result.objectValue?["items"]?.arrayValue ?? []
            if global.printsJSON { return items.forEach(Output.json) }
            var columns: [String] = []
            for item in items { for key in (item.objectValue ?? [:]).keys.sorted() where !columns.contains(key) { columns.append(key) } }
            if columns.contains("id") { columns.removeAll { $0 == "id" }; columns.insert("id", at: 0) }
            Output.table(columns, items.map { item in columns.map { Output.cell(item.objectValue?[$0]) } })
            Output.line("(\(items.count) of \(Output.cell(result.objectValue?["total"])))")
        }
    }
}

struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "One read-model document.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The read model.") var model: String
    @Argument(help: "The document's ID.") var id: String

    func run() async throws {
        try await reportingErrors {
            let document = try await global.client().callJSON("GET", ["v1", "readmodels", model, id])
            global.printsJSON ? Output.json(document) : Output.pretty(document)
        }
    }
}

struct Projections: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Projections: list, status, pause, resume, rebuild.",
        subcommands: [List.self, Status.self, Pause.self, Resume.self, Rebuild.self], defaultSubcommand: List.self
    )

    static let columns = ["name", "mode", "status", "checkpoint", "head", "lag", "lastError"]

    static func print(_ projections: [JSONValue], json: Bool) {
        if json { return projections.forEach(Output.json) }
        Output.table(columns.map { $0.uppercased() }, projections.map { p in columns.map { Output.cell(p.objectValue?[$0]) } })
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "Every projection's status.")
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            try await reportingErrors {
                let list = try await global.client().callJSON("GET", ["v1", "projections"])
                Projections.print(list.objectValue?["projections"]?.arrayValue ?? [], json: global.printsJSON)
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One projection's status.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The projection.") var name: String
        func run() async throws {
            try await reportingErrors {
                Projections.print([try await global.client().callJSON("GET", ["v1", "projections", name])], json: global.printsJSON)
            }
        }
    }

    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Pause a projection.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The projection.") var name: String
        func run() async throws { try await control(global, name, "pause") }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Resume a paused projection.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The projection.") var name: String
        func run() async throws { try await control(global, name, "resume") }
    }

    struct Rebuild: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Rebuild a projection's read model from the start.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The projection.") var name: String
        func run() async throws { try await control(global, name, "rebuild") }
    }
}

private func control(_ global: GlobalOptions, _ name: String, _ action: String) async throws {
    try await withErrorReporting {
        let status = try await global.client().callJSON("POST", ["v1", "projections", name, action])
        Projections.print([status], json: global.printsJSON)
    }
}

struct Tenants: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Tenants (an admin token for every tenant): list, create, delete.",
        subcommands: [List.self, Create.self, Remove.self], defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "Every tenant.")
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            try await reportingErrors {
                let tenants = try await global.client().callJSON("GET", ["v1", "admin", "tenants"]).objectValue?["tenants"]?.arrayValue ?? []
                if global.printsJSON { return tenants.forEach(Output.json) }
                Output.table(["TENANT"], tenants.map { [Output.cell($0.objectValue?["id"])] })
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a tenant.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The tenant ID.") var tenant: String
        func run() async throws {
            try await reportingErrors {
                let body = JSONValue.object(["id": .string(tenant)]).jsonData()
                let result = try await global.client().callJSON("POST", ["v1", "admin", "tenants"], body: [UInt8](body))
                global.printsJSON ? Output.json(result) : Output.line("tenant \(tenant) exists")
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Delete a tenant and all its data.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The tenant ID.") var tenant: String
        @Option(help: "The tenant ID again, to confirm.") var confirm: String

        func run() async throws {
            try await reportingErrors {
                guard confirm == tenant else {
                    throw CLIError(code: "bad_request", message: "--confirm must repeat the tenant ID (\(tenant))")
                }
                let result = try await global.client().callJSON("DELETE", ["v1", "admin", "tenants", tenant], query: [("confirm", confirm)])
                global.printsJSON ? Output.json(result) : Output.line("deleted tenant \(tenant)")
            }
        }
    }
}

struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write every event of the tenant as NDJSON to standard output.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Resume after this global position.") var after: Int64 = 0

    func run() async throws {
        try await reportingErrors {
            Output.bytes(try await global.client().call("GET", ["v1", "admin", "export"], query: [("after", String(after))]))
        }
    }
}

struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Import an export (NDJSON on standard input) into a tenant without events.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await reportingErrors {
            let input = [UInt8](FileHandle.standardInput.readDataToEndOfFile())
            let result = try await global.client().callJSON(
                "POST", ["v1", "admin", "import"], body: input, contentType: "application/x-ndjson"
            )
            if global.printsJSON { return Output.json(result) }
            let o = result.objectValue ?? [:]
            Output.line("imported \(Output.cell(o["events"])) events in \(Output.cell(o["streams"])) streams; head \(Output.cell(o["head"]))")
        }
    }
}
