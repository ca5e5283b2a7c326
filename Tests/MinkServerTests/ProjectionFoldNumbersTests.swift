import Foundation
import Mink
import MinkConfig
import MinkServer
import Testing

/// The batch fold keeps a running sum per incremented field rather than printing and parsing
/// the field at every event, and shares an event's parse between the projections compiled
/// together (issue 13): neither may change a document or an error — integers stay integers, a
/// double that becomes whole is read back as an integer, an overflow faults at its event, and a
/// set, append, unset or delete between increments sees the field's current value.
@Suite("Projection fold: running sums and shared parses", .timeLimit(.minutes(3)))
struct ProjectionFoldNumbersTests {
    static let handlers = """
            handlers:
              - event: Add
                id: "$.data.id"
                increment: { n: "$.data.d", deep.x: "$.data.d" }
              - event: AddOuter
                id: "$.data.id"
                increment: { deep: "$.data.d" }
              - event: AddInner
                id: "$.data.id"
                increment: { n.inner: "$.data.d" }
              - event: Put
                id: "$.data.id"
                set: { n: "$.data.v" }
              - event: Push
                id: "$.data.id"
                append: { n: "$.data.v" }
              - event: Drop
                id: "$.data.id"
                unset: [n]
              - event: Del
                id: "$.data.id"
                delete: true
        """

    static let yaml = "projections:\n" + ["one", "batch"].map { "  - name: \($0)\n    mode: async\n    readModel: \($0)\n" + handlers }
        .joined(separator: "\n")

    /// Integers, doubles, doubles that come back whole, numbers past 2^53, and every other edit
    /// between increments.
    static let script: [(String, String)] = [
        ("Add", #"{"id":"a","d":1}"#), ("Add", #"{"id":"a","d":2}"#), ("Add", #"{"id":"a","d":0.5}"#),
        ("Add", #"{"id":"a","d":0.5}"#), ("Add", #"{"id":"a","d":-4}"#), ("Add", #"{"id":"b","d":1.25}"#),
        ("Add", #"{"id":"b","d":9007199254740991}"#), ("Add", #"{"id":"b","d":1}"#), ("Add", #"{"id":"b","d":2}"#),
        ("Add", #"{"id":"c","d":1e300}"#), ("Add", #"{"id":"c","d":1.0}"#), ("Put", #"{"id":"a","v":10}"#),
        ("Add", #"{"id":"a","d":1}"#), ("Put", #"{"id":"a","v":12345678901234567}"#), ("Add", #"{"id":"a","d":0}"#),
        ("Add", #"{"id":"d","d":3}"#), ("Drop", #"{"id":"d"}"#), ("Add", #"{"id":"d","d":4}"#), ("Add", #"{"id":"e","d":1}"#),
        ("Del", #"{"id":"e"}"#), ("Add", #"{"id":"e","d":2}"#), ("Add", #"{"id":"f","d":1}"#), ("Put", #"{"id":"f","v":[1]}"#),
        ("Push", #"{"id":"f","v":2}"#), ("Add", #"{"id":"g","d":5}"#), ("Add", #"{"id":"g","d":1}"#), ("Put", #"{"id":"g","v":"x"}"#),
        ("Add", #"{"id":"b","d":-9007199254740993}"#), ("Add", #"{"id":"b","d":0.1}"#), ("Add", #"{"id":"b","d":0.2}"#),
    ]

    /// Appends `script`, one event per append, and returns its stored events.
    static func prepare(_ storage: ServerStorage, _ script: [(String, String)]) async throws -> [Event] {
        let store = EventStore(adapter: storage.events)
        for (i, (type, data)) in script.enumerated() {
            try await store.append("s-\(i % 3)", events: [EventData(type: type, data: Data(data.utf8))])
        }
        return Array(try await store.readAll(after: 0, filter: EventFilter(), limit: 1000).suffix(script.count))
    }

    static func compiled() throws -> [String: DeclaredProjection] {
        let all = try DeclaredProjection.compile(MinkdConfiguration.parse(yaml: yaml).projections)
        return Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
    }

    /// Applies `events` in one transaction; the error, if any, as (position, message).
    static func applyBatch(_ p: DeclaredProjection, _ events: [Event], _ storage: ServerStorage) async throws -> (UInt64?, String)? {
        do {
            try await storage.readModels.transaction { tx in try p.apply(batch: events, in: tx) }
            return nil
        } catch let error as MinkError {
            return (error.position, error.message)
        }
    }

    @Test(arguments: ProjectionStorage.allCases)
    func runningSumsGiveTheDocumentsOfEventByEvent(_ kind: ProjectionStorage) async throws {
        try await ProjectionBatchFoldTests.withStorage(kind) { storage in
            let events = try await Self.prepare(storage, Self.script)
            #expect(events.count == Self.script.count)
            let p = try Self.compiled()
            try await ProjectionBatchFoldTests.oneByOne(events, p["one"]!, storage)
            let one = try await ProjectionBatchFoldTests.documents(storage, "one")
            #expect(one["a"] == #"{"deep":{"x":1},"n":12345678901234567}"#)
            #expect(one["c"] == #"{"deep":{"x":1e+300},"n":1e+300}"#)
            #expect(one["d"] == #"{"deep":{"x":7},"n":4}"#)
            #expect(one["e"] == #"{"deep":{"x":2},"n":2}"#)
            #expect(one["f"] == #"{"deep":{"x":1},"n":[1,2]}"#)
            #expect(one["g"] == #"{"deep":{"x":6},"n":"x"}"#)
            // Every split into two batches, and the whole script in one.
            for split in 0...events.count {
                try await storage.readModels.dropModel("batch")
                for part in [Array(events[..<split]), Array(events[split...])] where !part.isEmpty {
                    #expect(try await Self.applyBatch(p["batch"]!, part, storage) == nil)
                }
                #expect(try await ProjectionBatchFoldTests.documents(storage, "batch") == one, "split at \(split)")
            }
        }
    }

    /// A batch that deletes several stored documents (one statement per ID on PostgreSQL, all in
    /// one round trip) and loads several (one lookup per ID) — whatever the model's size.
    @Test(arguments: ProjectionStorage.allCases)
    func aBatchDeletesAndLoadsManyStoredDocuments(_ kind: ProjectionStorage) async throws {
        try await ProjectionBatchFoldTests.withStorage(kind) { storage in
            let created = (0..<40).map { ("Add", #"{"id":"k\#($0)","d":\#($0)}"#) }
            let events = try await Self.prepare(storage, created + [
                ("Del", #"{"id":"k1"}"#), ("Del", #"{"id":"k2"}"#), ("Del", #"{"id":"nope"}"#), ("Add", #"{"id":"k3","d":1}"#),
                ("Del", #"{"id":"k39"}"#), ("Add", #"{"id":"k4","d":0.5}"#), ("Add", #"{"id":"new","d":2}"#),
            ])
            let p = try Self.compiled()
            #expect(try await Self.applyBatch(p["batch"]!, Array(events[..<40]), storage) == nil)
            #expect(try await Self.applyBatch(p["batch"]!, Array(events[40...]), storage) == nil)
            let docs = try await ProjectionBatchFoldTests.documents(storage, "batch")
            #expect(docs.count == 38)
            #expect(docs["k1"] == nil && docs["k2"] == nil && docs["k39"] == nil && docs["nope"] == nil)
            #expect(docs["k3"] == #"{"deep":{"x":4},"n":4}"#)
            #expect(docs["k4"] == #"{"deep":{"x":4.5},"n":4.5}"#)
            #expect(docs["new"] == #"{"deep":{"x":2},"n":2}"#)
            #expect(docs["k0"] == #"{"deep":{"x":0},"n":0}"#)
        }
    }

    /// An overflow, a sum that is not finite, an increment of a field holding an object or a
    /// string: the batch fails at that event with event-by-event's message, nothing applied.
    @Test(arguments: ProjectionStorage.allCases)
    func aFailingIncrementFaultsAtItsEventWithTheSameMessage(_ kind: ProjectionStorage) async throws {
        try await ProjectionBatchFoldTests.withStorage(kind) { storage in
            let cases: [[(String, String)]] = [
                [("Add", #"{"id":"o","d":9223372036854775806}"#), ("Add", #"{"id":"o","d":1}"#), ("Add", #"{"id":"o","d":1}"#)],
                [("Add", #"{"id":"o","d":1.5e308}"#), ("Add", #"{"id":"o","d":1}"#), ("Add", #"{"id":"o","d":1.5e308}"#)],
                [("Add", #"{"id":"o","d":1}"#), ("Add", #"{"id":"o","d":2}"#), ("AddOuter", #"{"id":"o","d":1}"#)],
                [("Add", #"{"id":"o","d":1}"#), ("AddInner", #"{"id":"o","d":1}"#)],
                [("Add", #"{"id":"o","d":1}"#), ("Put", #"{"id":"o","v":"x"}"#), ("Add", #"{"id":"o","d":1}"#)],
                [("Add", #"{"id":"o","d":1}"#), ("Add", #"{"id":"o","d":"1"}"#)],
            ]
            for script in cases {
                for model in ["one", "batch"] { try await storage.readModels.dropModel(model) }
                let events = try await Self.prepare(storage, script)
                let p = try Self.compiled()
                var expected: (UInt64?, String)?
                for e in events where expected == nil { expected = try await Self.applyBatch(p["one"]!, [e], storage) }
                let failed = try #require(expected, "event by event applied \(script)")
                #expect(failed.0 == events.last!.globalPosition)
                let got = try #require(try await Self.applyBatch(p["batch"]!, Array(events), storage), "applied \(script)")
                #expect(got.0 == failed.0)
                #expect(got.1 == failed.1.replacingOccurrences(of: "projection one:", with: "projection batch:"))
                #expect(try await ProjectionBatchFoldTests.documents(storage, "batch").isEmpty)
            }
        }
    }

    /// Projections compiled together share an event's parse; an entry made from another event at
    /// the same position (another tenant's log, here another storage) is never used.
    @Test func aSharedParseIsUsedOnlyForTheEventItWasMadeFrom() async throws {
        let p = try Self.compiled()
        var docs: [[String: String]] = []
        for amount in ["1", "2.5"] {
            try await ProjectionBatchFoldTests.withStorage(.memory) { storage in
                let events = try await Self.prepare(storage, [("Add", #"{"id":"s","d":\#(amount)}"#), ("Add", #"{"id":"s","d":1}"#)])
                // `one` parses first, `batch` finds its parses.
                #expect(try await Self.applyBatch(p["one"]!, events, storage) == nil)
                #expect(try await Self.applyBatch(p["batch"]!, events, storage) == nil)
                let one = try await ProjectionBatchFoldTests.documents(storage, "one")
                #expect(try await ProjectionBatchFoldTests.documents(storage, "batch") == one)
                docs.append(one)
            }
        }
        #expect(docs.map { $0["s"] } == [#"{"deep":{"x":2},"n":2}"#, #"{"deep":{"x":3.5},"n":3.5}"#])
    }
}
