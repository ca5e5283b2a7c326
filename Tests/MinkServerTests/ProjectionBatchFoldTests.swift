import Foundation
import Mink
import MinkConfig
import MinkServer
import Testing

/// The batch fold of declared projections (`DeclaredProjection.apply(batch:in:)`: one load, the
/// events applied in memory, one write per changed document) gives the same documents as
/// applying the events one by one, on every storage.
@Suite("Projection batch fold", .timeLimit(.minutes(3)))
struct ProjectionBatchFoldTests {
    /// Three projections with the same handlers into three read models: `one` is fed event by
    /// event, `batch` in batches, `eng` by the engine's runner.
    static func yaml() -> String {
        let handlers = """
                handlers:
                  - event: Created
                    id: "$.data.id"
                    set: { id: "$.data.id", status: "new", n: 0, user: "$.metadata.userId", at: "$.globalPosition" }
                  - event: Bumped
                    id: "$.data.id"
                    increment: { n: 1, total: "$.data.amount" }
                    append: { log: "$.data.amount" }
                  - event: Tagged
                    id: "$.data.id"
                    set: { address.city: "$.data.city" }
                    append: { tags: "$.data.tag" }
                  - event: Cleared
                    id: "$.data.id"
                    unset: [tags, address.city]
                  - event: Removed
                    id: "$.data.id"
                    delete: true
                  - event: Broken
                    id: "$.data.id"
                    increment: { n: "$.data.bad" }
            """
        return "projections:\n" + ["one", "batch", "eng"].map { "  - name: \($0)\n    mode: async\n    readModel: \($0)\n" + handlers }
            .joined(separator: "\n")
    }

    /// Every handler kind, documents created, changed, deleted and re-created, an ID that is a
    /// number, an `unset` of a missing document, a type without a handler.
    static let script: [(String, String)] = [
        ("Created", #"{"id":"a"}"#), ("Bumped", #"{"id":"a","amount":2}"#), ("Bumped", #"{"id":"a","amount":2.5}"#),
        ("Tagged", #"{"id":"a","tag":"x","city":"Oslo"}"#), ("Created", #"{"id":"b"}"#), ("Bumped", #"{"id":"b","amount":1}"#),
        ("Removed", #"{"id":"b"}"#), ("Cleared", #"{"id":"c"}"#), ("Created", #"{"id":"d"}"#), ("Tagged", #"{"id":"d","tag":"y","city":"Rome"}"#),
        ("Ignored", #"{"id":"a"}"#), ("Bumped", #"{"id":7,"amount":3}"#), ("Tagged", #"{"id":7,"tag":"z","city":"Lima"}"#),
        // The second half: documents stored by the first half are changed, deleted, re-created.
        ("Cleared", #"{"id":"d"}"#), ("Bumped", #"{"id":"a","amount":1}"#), ("Removed", #"{"id":"a"}"#), ("Created", #"{"id":"a"}"#),
        ("Bumped", #"{"id":"a","amount":4}"#), ("Removed", #"{"id":"7"}"#), ("Tagged", #"{"id":"e","tag":"w","city":"Kyiv"}"#),
        ("Created", #"{"id":"f"}"#), ("Removed", #"{"id":"f"}"#), ("Removed", #"{"id":"zz"}"#), ("Bumped", #"{"id":"d","amount":9}"#),
    ]

    /// The poison event of ``script`` variants: an increment by a string.
    static let poison = ("Broken", #"{"id":"d","bad":"abc"}"#)

    /// Stores `script` in the log and returns the stored events and the three projections.
    static func prepare(_ storage: ServerStorage, _ script: [(String, String)]) async throws -> (EventStore, [Event], [String: DeclaredProjection]) {
        let store = EventStore(adapter: storage.events)
        for (i, (type, data)) in script.enumerated() {
            let meta = Metadata(userID: "u\(i % 3)")
            try await store.append("s-\(i % 4)", events: [EventData(type: type, data: Data(data.utf8))], metadata: meta)
        }
        let events = try await store.readAll(after: 0, filter: EventFilter(), limit: 1000)
        #expect(events.count == script.count)
        let parsed = try MinkdConfiguration.parse(yaml: yaml())
        let compiled = try DeclaredProjection.compile(parsed.projections)
        return (store, events, Dictionary(uniqueKeysWithValues: compiled.map { ($0.name, $0) }))
    }

    /// The documents of a model, sorted by ID, as text.
    static func documents(_ storage: ServerStorage, _ model: String) async throws -> [String: String] {
        let docs = try await storage.readModels.find(model, query: Query())
        return Dictionary(uniqueKeysWithValues: docs.map { ($0.id, String(decoding: $0.json, as: UTF8.self)) })
    }

    /// Runs `body` on a fresh storage of `kind`, closed afterwards.
    static func withStorage(_ kind: ProjectionStorage, _ body: (ServerStorage) async throws -> Void) async throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let storage = try await kind.open(directory: dir)
        do {
            try await body(storage)
        } catch {
            await storage.close()
            throw error
        }
        await storage.close()
    }

    /// Applies each event in a transaction of its own.
    static func oneByOne(_ events: [Event], _ p: DeclaredProjection, _ storage: ServerStorage) async throws {
        for e in events { try await storage.readModels.transaction { tx in try p.apply(e, in: tx) } }
    }

    @Test(arguments: ProjectionStorage.allCases)
    func batchFoldMatchesEventByEvent(_ kind: ProjectionStorage) async throws {
        try await Self.withStorage(kind) { storage in
            let (_, events, p) = try await Self.prepare(storage, Self.script)
            try await Self.oneByOne(events, p["one"]!, storage)
            // Two batches: the second starts from documents the first stored.
            let half = 13
            for part in [Array(events[..<half]), Array(events[half...])] {
                try await storage.readModels.transaction { tx in try p["batch"]!.apply(batch: part, in: tx) }
            }
            let one = try await Self.documents(storage, "one")
            let batch = try await Self.documents(storage, "batch")
            #expect(batch == one)
            #expect(one.keys.sorted() == ["a", "d", "e"])
            #expect(one["a"] == #"{"at":17,"id":"a","log":[4],"n":1,"status":"new","total":4,"user":"u1"}"#)
            #expect(one["d"] == #"{"address":{},"at":9,"id":"d","log":[9],"n":1,"status":"new","total":9,"user":"u2"}"#)
            #expect(one["e"] == #"{"address":{"city":"Kyiv"},"tags":["w"]}"#)
            // The whole script in one batch gives the same.
            try await storage.readModels.dropModel("batch")
            try await storage.readModels.transaction { tx in try p["batch"]!.apply(batch: events, in: tx) }
            #expect(try await Self.documents(storage, "batch") == one)
        }
    }

    @Test(arguments: ProjectionStorage.allCases)
    func aPoisonEventInABatchAppliesNothingOfIt(_ kind: ProjectionStorage) async throws {
        try await Self.withStorage(kind) { storage in
            var script = Self.script
            script.insert(Self.poison, at: 18)
            let (_, events, p) = try await Self.prepare(storage, script)
            try await storage.readModels.transaction { tx in try p["batch"]!.apply(batch: Array(events[..<13]), in: tx) }
            let before = try await Self.documents(storage, "batch")
            do {
                try await storage.readModels.transaction { tx in
                    try p["batch"]!.apply(batch: Array(events[13...]), in: tx)
                    try tx.setCheckpoint("batch", to: events.last!.globalPosition)
                }
                Issue.record("the batch with a poison event was applied")
            } catch let error as MinkError {
                #expect(error.code == .projectionFailed)
                #expect(error.position == events[18].globalPosition)
                #expect(error.message.contains("event \(events[18].globalPosition) (Broken): increment n"), "\(error.message)")
            }
            #expect(try await Self.documents(storage, "batch") == before)
            #expect(try await storage.readModels.checkpoint("batch") == 0)
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: ProjectionStorage.allCases)
    func theRunnerFaultsAtThePoisonEventWithWhatPrecedesItApplied(_ kind: ProjectionStorage) async throws {
        try await Self.withStorage(kind) { storage in
            var script = Self.script
            script.insert(Self.poison, at: 18)
            let (store, events, p) = try await Self.prepare(storage, script)
            try await Self.oneByOne(Array(events[..<18]), p["one"]!, storage)
            let engine = ProjectionEngine(store: store, readModels: storage.readModels)
            await engine.registerReadModel(
                p["eng"]!, mode: .async, readModels: storage.readModels,
                options: AsyncOptions(batchSize: 8, retryPolicy: RetryPolicy(maxAttempts: 2, initialBackoff: .milliseconds(1)), maxBatchSize: 64)
            )
            try await engine.start()
            let status = try await engine.waitUntilCaughtUp("eng")
            await engine.stop()
            #expect(status.state == .faulted)
            #expect(status.faultedPosition == events[18].globalPosition)
            #expect(status.checkpoint == events[18].globalPosition - 1)
            #expect(status.lastError?.contains("increment n") == true, "\(status.lastError ?? "-")")
            #expect(try await Self.documents(storage, "eng") == Self.documents(storage, "one"))
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: ProjectionStorage.allCases)
    func theRunnerGivesTheDocumentsOfEventByEventApplication(_ kind: ProjectionStorage) async throws {
        try await Self.withStorage(kind) { storage in
            // Pages of 2 growing to 16 (adaptive), then short pages once caught up.
            let script = (0..<6).flatMap { _ in Self.script }
            let (store, events, p) = try await Self.prepare(storage, script)
            try await Self.oneByOne(events, p["one"]!, storage)
            let engine = ProjectionEngine(store: store, readModels: storage.readModels)
            // With the next page read while a batch applies (minkd does so on PostgreSQL).
            var options = AsyncOptions(batchSize: 2, maxBatchSize: 16)
            options.readAhead = true
            await engine.registerReadModel(p["eng"]!, mode: .async, readModels: storage.readModels, options: options)
            try await engine.start()
            let status = try await engine.waitUntilCaughtUp("eng")
            #expect(status.state == .running && status.checkpoint == events.last!.globalPosition)
            #expect(try await Self.documents(storage, "eng") == Self.documents(storage, "one"))
            // Live events after the catch-up, one page each.
            try await store.append("s-9", events: [EventData(type: "Bumped", data: Data(#"{"id":"a","amount":1}"#.utf8))])
            let head = try await store.headPosition()
            let live = try await engine.waitUntilCaughtUp("eng", to: head)
            await engine.stop()
            #expect(live.checkpoint == head)
            let a = try await Self.documents(storage, "eng")["a"]
            #expect(a?.contains(#""n":2"#) == true, "\(a ?? "-")")
        }
    }

    @Test(arguments: ProjectionStorage.allCases)
    func inlineAppendsOfManyEventsFoldLikeEventByEvent(_ kind: ProjectionStorage) async throws {
        try await Self.withStorage(kind) { storage in
            let parsed = try MinkdConfiguration.parse(yaml: Self.yaml())
            let compiled = try DeclaredProjection.compile(parsed.projections)
            let p = Dictionary(uniqueKeysWithValues: compiled.map { ($0.name, $0) })
            let store = EventStore(adapter: storage.events)
            let engine = ProjectionEngine(store: store, readModels: storage.readModels)
            await engine.registerReadModel(p["batch"]!, mode: .inline, readModels: storage.readModels)
            try await engine.start()
            // Appends of several events each: the hook folds an append's events in one pass.
            var i = 0
            for size in [5, 1, 8, 10] {
                let part = Self.script[i..<min(i + size, Self.script.count)]
                i += size
                try await store.append("s-\(size)", events: part.map { EventData(type: $0.0, data: Data($0.1.utf8)) }, metadata: Metadata(userID: "u"))
            }
            await engine.stop()
            let events = try await store.readAll(after: 0, filter: EventFilter(), limit: 1000)
            #expect(events.count == Self.script.count)
            try await Self.oneByOne(events, p["one"]!, storage)
            let one = try await Self.documents(storage, "one")
            #expect(try await Self.documents(storage, "batch") == one)
            #expect(one.keys.sorted() == ["a", "d", "e"])
        }
    }
}
