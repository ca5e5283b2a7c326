import Foundation
import Mink
import MinkConfig
import MinkServer
import Testing

/// Compiled handlers (issue 13): a handler builds only the members of an event's `data` its
/// paths read and evaluates its literals once; what it writes must be exactly what a full parse
/// and a per-event evaluation give — including for data that repeats a key, is not an object,
/// or is invalid JSON in a member no path reads. And event reads (PostgreSQL reads pages in
/// binary format) give the events as appended.
@Suite("Compiled handlers", .timeLimit(.minutes(3)))
struct CompiledHandlerTests {
    static let yaml = """
        projections:
          - name: p
            mode: async
            readModel: p
            handlers:
              - event: Whole
                id: "$.data.id"
                set: { whole: "$.data", nested: "$.data.o.k", second: "$.data.arr.1", lit: { k: [1, "x", 2.5], m: null }, mixed: { v: "$.data.v", c: true }, missing: "$.data.nope", st: "$.streamId", ver: "$.version" }
              - event: Part
                id: "$.data.id"
                set: { v: "$.data.v", deep: "$.data.o.k", list: ["$.data.v", 3] }
                increment: { n: "$.data.d", c: 1 }
        """

    static func projection() throws -> DeclaredProjection {
        try DeclaredProjection.compile(MinkdConfiguration.parse(yaml: yaml).projections)[0]
    }

    /// Appends `script` (type, data bytes) one event per append and returns the stored events.
    static func store(_ storage: ServerStorage, _ script: [(String, String)]) async throws -> (EventStore, [Event]) {
        let store = EventStore(adapter: storage.events)
        for (i, (type, data)) in script.enumerated() {
            try await store.append("s-\(i)", events: [EventData(type: type, data: Data(data.utf8))], metadata: Metadata(userID: "u", custom: ["k": ""]))
        }
        return (store, try await store.readAll(after: 0, filter: EventFilter(), limit: 100))
    }

    @Test(arguments: ProjectionStorage.allCases)
    func aHandlerSeesWhatAFullParseGives(_ kind: ProjectionStorage) async throws {
        try await ProjectionBatchFoldTests.withStorage(kind) { storage in
            let script: [(String, String)] = [
                ("Whole", #"{"id":"w","o":{"k":[1,{"z":null}]},"arr":["a","b"],"v":"v\u0041","x":[true,false]}"#),
                // A repeated key keeps its last value; members no path reads are skipped.
                ("Part", #"{"skip":{"deep":[1,2,{"a":"b"}]},"id":"p","v":1,"v":"two","d":2,"o":{"k":7,"k":8},"tail":"\ud83d\ude00"}"#),
                ("Part", #"  {"id":"p","d":0.5,"v":null}  "#),
                ("Part", #"{"id":"q","d":-3}"#),
            ]
            let (_, events) = try await Self.store(storage, script)
            #expect(events.count == script.count)
            let p = try Self.projection()
            try await storage.readModels.transaction { tx in try p.apply(batch: events, in: tx) }
            let docs = try await ProjectionBatchFoldTests.documents(storage, "p")
            #expect(
                docs["w"]
                    == #"{"lit":{"k":[1,"x",2.5],"m":null},"missing":null,"mixed":{"c":true,"v":"vA"},"nested":[1,{"z":null}],"second":"b","st":"s-0","ver":1,"whole":{"arr":["a","b"],"id":"w","o":{"k":[1,{"z":null}]},"v":"vA","x":[true,false]}}"#
            )
            #expect(docs["p"] == #"{"c":2,"deep":null,"list":[null,3],"n":2.5,"v":null}"#)
            #expect(docs["q"] == #"{"c":1,"deep":null,"list":[null,3],"n":-3,"v":null}"#)
            // Event by event: the same documents.
            try await storage.readModels.dropModel("p")
            for e in events { try await storage.readModels.transaction { tx in try p.apply(e, in: tx) } }
            #expect(try await ProjectionBatchFoldTests.documents(storage, "p") == docs)
        }
    }

    /// Data a full parse refuses is refused whatever member the fault is in, at its event.
    @Test(arguments: ProjectionStorage.allCases)
    func invalidDataFaultsEvenInAMemberNoPathReads(_ kind: ProjectionStorage) async throws {
        try await ProjectionBatchFoldTests.withStorage(kind) { storage in
            let bad = [#"{"id":"a","junk":[1,,2],"d":1}"#, #"{"id":"a","d":1} x"#, #"{"id":"a","junk":"\x","d":1}"#, #"{"id":"a","d":1"#]
            for data in bad {
                try await storage.readModels.dropModel("p")
                let (_, events) = try await Self.store(storage, [("Part", #"{"id":"a","d":1}"#), ("Part", data)])
                let p = try Self.projection()
                do {
                    try await storage.readModels.transaction { tx in try p.apply(batch: Array(events.suffix(2)), in: tx) }
                    Issue.record("applied invalid data \(data)")
                } catch let error as MinkError {
                    #expect(error.code == .projectionFailed)
                    #expect(error.position == events.last!.globalPosition)
                    #expect(error.message.contains("the event's data is not valid JSON"), "\(error.message)")
                }
                #expect(try await ProjectionBatchFoldTests.documents(storage, "p").isEmpty)
            }
            // Data that is not an object: its paths are null, so the ID is refused.
            let (_, events) = try await Self.store(storage, [("Part", #"[{"id":"a"}]"#)])
            let p = try Self.projection()
            do {
                try await storage.readModels.transaction { tx in try p.apply(batch: [events.last!], in: tx) }
                Issue.record("applied data without an ID")
            } catch let error as MinkError {
                #expect(error.message.contains("id $.data.id is null"), "\(error.message)")
            }
        }
    }

    /// A page read by position (PostgreSQL: binary format) gives each event exactly as a read
    /// of its stream does: ID, type, data bytes, metadata, version, position, timestamp.
    @Test(arguments: ProjectionStorage.allCases)
    func readAllGivesTheEventsAsAppended(_ kind: ProjectionStorage) async throws {
        try await ProjectionBatchFoldTests.withStorage(kind) { storage in
            let store = EventStore(adapter: storage.events)
            var appended: [Event] = []
            let payloads = [#"{"a":1}"#, #"{"b":"\u0000 é 😀"}"#, "[]", #"{"big":"\#(String(repeating: "x", count: 5000))"}"#]
            for (i, data) in payloads.enumerated() {
                let meta = i.isMultiple(of: 2) ? Metadata() : Metadata(correlationID: "c", causationID: "k", userID: "u", tenantID: nil, custom: ["x": "", "y": "1"])
                _ = try await store.append("r-\(i % 2)", events: [EventData(type: "T\(i)", data: Data(data.utf8))], metadata: meta)
            }
            for s in ["r-0", "r-1"] { appended += try await store.readStream(s, from: 0, limit: 10) }
            let all = try await store.readAll(after: 0, filter: EventFilter(), limit: 10)
            #expect(all.count == payloads.count)
            #expect(Set(all) == Set(appended))
            #expect(all.map(\.globalPosition) == all.map(\.globalPosition).sorted())
            let filtered = try await store.readAll(after: all[0].globalPosition, filter: EventFilter(eventTypes: ["T1", "T3"]), limit: 10)
            #expect(filtered == all.filter { $0.type == "T1" || $0.type == "T3" })
        }
    }
}
