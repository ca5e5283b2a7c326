import Testing
@testable import MinkConfig

@Suite(.timeLimit(.minutes(3))) struct ProjectionParserTests {
    func projections(_ handlers: String, extra: String = "") throws -> [ProjectionDefinition] {
        try MinkdConfiguration.parse(yaml: """
            projections:
              - name: p
            \(extra)    handlers:
            \(handlers)
            """).projections
    }

    func error(_ handlers: String, extra: String = "") -> String? {
        configError { try projections(handlers, extra: extra) }
    }

    @Test func keepsSetOrderAndLiteralTypes() throws {
        let parsed = try projections("""
                  - event: E
                    id: 7
                    set:
                      z: "text"
                      a: 12
                      m: 1.5
                      b: true
                      n: null
                      q: "123"
                      l: [1, "$.version"]
                      d: "$$x"
            """)
        let handler = try #require(parsed.first?.handlers.first)
        #expect(parsed[0].readModel == "p" && parsed[0].mode == .async)
        #expect(handler.id == .int(7))
        #expect(handler.set == [
            FieldAssignment("z", .string("text")), FieldAssignment("a", .int(12)), FieldAssignment("m", .double(1.5)),
            FieldAssignment("b", .bool(true)), FieldAssignment("n", .null), FieldAssignment("q", .string("123")),
            FieldAssignment("l", .array([.int(1), .path(EventPath(root: .version))])), FieldAssignment("d", .string("$x")),
        ])
        #expect(!handler.set[6].value.isConstant && handler.set[0].value.isConstant)
    }

    @Test(arguments: [
        ("$.data", EventPath(root: .data)), ("$.data.a.b-c.0", EventPath(root: .data, segments: ["a", "b-c", "0"])),
        ("$.streamId", EventPath(root: .streamId)), ("$.version", EventPath(root: .version)),
        ("$.globalPosition", EventPath(root: .globalPosition)), ("$.timestamp", EventPath(root: .timestamp)),
        ("$.type", EventPath(root: .type)), ("$.id", EventPath(root: .id)),
        ("$.metadata.userId", EventPath(root: .metadata, segments: ["userId"])),
        ("$.metadata.custom.k", EventPath(root: .metadata, segments: ["custom", "k"])),
    ])
    func parsesPaths(_ text: String, _ path: EventPath) throws {
        #expect(try EventPath(parsing: text, keyPath: "x") == path)
        #expect(path.description == text)
    }

    @Test(arguments: [
        ("$.data..x", #"config: x: invalid path "$.data..x": empty segment"#),
        ("$.", #"config: x: invalid path "$.": empty segment"#),
        ("$.payload.x", #"config: x: invalid path "$.payload.x": unknown event member "payload" (expected one of id, streamId, type, data, metadata, version, globalPosition, timestamp)"#),
        ("$.version.x", #"config: x: invalid path "$.version.x": $.version has no members"#),
        ("$.metadata.user", #"config: x: invalid path "$.metadata.user": unknown metadata field "user" (expected one of correlationId, causationId, userId, tenantId, custom)"#),
        ("$.metadata.userId.x", #"config: x: invalid path "$.metadata.userId.x": $.metadata.userId has no members"#),
        ("$.metadata.custom.a.b", #"config: x: invalid path "$.metadata.custom.a.b": $.metadata.custom takes one key"#),
        ("$.data.a b", #"config: x: invalid path "$.data.a b": segment "a b" may hold only letters, digits, '_' and '-'"#),
        ("$.data[0]", #"config: x: invalid path "$.data[0]": segment "data[0]" may hold only letters, digits, '_' and '-'"#),
    ])
    func rejectsPaths(_ text: String, _ message: String) {
        #expect(configError { try EventPath(parsing: text, keyPath: "x") } == message)
    }

    @Test(arguments: [
        ("      - event: E\n        id: $.data.id\n        set: {total: \"$.data..x\"}",
         #"config: projections[0].handlers[0].set.total: invalid path "$.data..x": empty segment"#),
        ("      - event: E\n        id: $.data.id\n        sett: {a: 1}", "config: projections[0].handlers[0].sett: unknown key"),
        ("      - event: E\n        set: {a: 1}", "config: projections[0].handlers[0].id: required"),
        ("      - id: $.data.id\n        set: {a: 1}", "config: projections[0].handlers[0].event: required"),
        ("      - event: E\n        id: $.data.id", "config: projections[0].handlers[0]: nothing to do: give set, increment, unset, append or delete: true"),
        ("      - event: E\n        id: $.data.id\n        delete: true\n        set: {a: 1}", "config: projections[0].handlers[0].delete: cannot be combined with set, increment, unset or append"),
        ("      - event: E\n        id: $.data.id\n        increment: {a: \"x\"}", #"config: projections[0].handlers[0].increment.a: must be a number or a path, found "x""#),
        ("      - event: E\n        id: [1]\n        delete: true", #"config: projections[0].handlers[0].id: must be a path ("$.data.orderId") or a string or integer"#),
        ("      - event: E\n        id: $.data.id\n        set: {\"a-b\": 1}", #"config: projections[0].handlers[0].set.a-b: invalid field "a-b": must be a dotted path of identifiers (address.city)"#),
        ("      - event: E\n        id: $.data.id\n        unset: [\"1x\"]", #"config: projections[0].handlers[0].unset[0]: invalid field "1x": must be a dotted path of identifiers (address.city)"#),
        ("      - event: E\n        id: $.data.id\n        delete: yes please", #"config: projections[0].handlers[0].delete: expected true or false, found "yes please""#),
        ("      - event: E\n        id: $.id\n        delete: true\n      - event: E\n        id: $.id\n        delete: true",
         #"config: projections[0].handlers[1].event: "E" already has a handler (projections[0].handlers[0])"#),
        ("      []", "config: projections[0].handlers: at least one handler is required"),
    ])
    func rejectsBadHandlers(_ handlers: String, _ message: String) {
        #expect(error(handlers) == message)
    }

    @Test func rejectsBadProjections() {
        let handler = "      - {event: E, id: $.id, delete: true}"
        #expect(error(handler, extra: "    mode: eager\n") == #"config: projections[0].mode: unknown mode "eager" (expected async or inline)"#)
        #expect(error(handler, extra: "    readModel: Orders\n") == #"config: projections[0].readModel: invalid name "Orders": must match ^[a-z][a-z0-9_]{0,62}$"#)
        #expect(error(handler, extra: "    indexes: [\"a..b\"]\n") == #"config: projections[0].indexes[0]: invalid field "a..b": must be a dotted path of identifiers (address.city)"#)
        #expect(error(handler, extra: "    filter: x\n") == "config: projections[0].filter: unknown key")
        let twice = """
            projections:
              - {name: a, handlers: [{event: E, id: $.id, delete: true}]}
              - {name: a, readModel: b, handlers: [{event: E, id: $.id, delete: true}]}
            """
        #expect(parseError(twice) == #"config: projections[1].name: "a" is already the name of projections[0]"#)
        let shared = """
            projections:
              - {name: a, handlers: [{event: E, id: $.id, delete: true}]}
              - {name: b, readModel: a, handlers: [{event: E, id: $.id, delete: true}]}
            """
        #expect(parseError(shared) == #"config: projections[1].readModel: read model "a" is already written by projections[0]"#)
        #expect(parseError("projections:\n  - {mode: async, handlers: [{event: E, id: $.id, delete: true}]}") == "config: projections[0].name: required")
    }
}
