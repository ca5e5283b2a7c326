import Foundation
import Mink

/// The storage a conformance case runs against: one value per case, fresh and empty.
public struct ConformanceStorage: Sendable {
    /// Events.
    public var events: any EventStoreAdapter
    /// Snapshots.
    public var snapshots: any SnapshotAdapter
    /// Read models and checkpoints.
    public var readModels: any ReadModelStore

    /// Bundles the three adapter roles (often one object).
    public init(events: any EventStoreAdapter, snapshots: any SnapshotAdapter, readModels: any ReadModelStore) {
        self.events = events
        self.snapshots = snapshots
        self.readModels = readModels
    }

    /// One object playing all three roles.
    public init<S: EventStoreAdapter & SnapshotAdapter & ReadModelStore>(_ storage: S) {
        self.init(events: storage, snapshots: storage, readModels: storage)
    }
}

/// A failed conformance expectation.
public struct ConformanceFailure: Error, CustomStringConvertible {
    /// What was expected and what happened.
    public var description: String
    init(_ message: String, file: StaticString, line: UInt) { description = "\(message) (\(file):\(line))" }
}

/// The behaviour every storage adapter must show — one suite, run by every adapter's tests:
///
/// ```swift
/// @Test(arguments: AdapterConformance.cases)
/// func conformance(_ check: AdapterConformance.Case) async throws {
///     try await check.run { ConformanceStorage(InMemoryStorage()) }
/// }
/// ```
///
/// A behaviour that differs between adapters is a bug in one of them.
public enum AdapterConformance {
    /// One named behaviour check.
    public struct Case: Sendable, CustomStringConvertible {
        /// The behaviour checked.
        public let name: String
        let body: @Sendable (ConformanceStorage) async throws -> Void

        /// Runs the check against fresh storage from `factory`.
        public func run(_ factory: @Sendable () async throws -> ConformanceStorage) async throws {
            try await body(try await factory())
        }

        public var description: String { name }
    }

    /// Every case of the suite.
    public static let cases: [Case] = [
        Case(name: "append assigns versions from 1 and consecutive positions", body: appendAssigns),
        Case(name: "read a stream forward, from a version, backward", body: readStream),
        Case(name: "expected versions and failed checks write nothing", body: expectedVersions),
        Case(name: "concurrent appends with the same expected version: one wins", body: concurrentAppends),
        Case(name: "stream info", body: streamInfo),
        Case(name: "global log after a position, with filters", body: globalLog),
        Case(name: "global log pages bounded by what their data weigh", body: globalLogByteBudget),
        Case(name: "idempotent retries and duplicate event IDs", body: idempotency),
        Case(name: "transaction hook commits with the append or not at all", body: transactionHook),
        Case(name: "read-model transactions and checkpoints are atomic", body: readModelTransactions),
        Case(name: "read-model queries: every operator, and/or, order, paging, count", body: queries),
        Case(name: "read-model queries: numbers beyond Double's range, fields named NULL", body: queryEdges),
        Case(name: "read-model page and total read from one state while documents are written", body: findWithTotalIsOneRead),
        Case(name: "any bytes round-trip", body: bytesRoundTrip),
        Case(name: "tenants are isolated", body: tenants),
        Case(name: "snapshots keep the newest", body: snapshots),
        Case(name: "readers never see positions out of order", body: readersInOrder),
        Case(name: "drop model, model names, indexes", body: modelAdmin),
    ] + lifecycleCases + projectionRetryCases
}

// MARK: - Helpers

private func check(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #filePath, line: UInt = #line) throws {
    if !condition { throw ConformanceFailure(message(), file: file, line: line) }
}

private func expectError(
    _ code: MinkError.Code, file: StaticString = #filePath, line: UInt = #line, _ body: () async throws -> Void
) async throws -> MinkError {
    do {
        try await body()
    } catch let e as MinkError {
        try check(e.code == code, "expected error \(code), got \(e)", file: file, line: line)
        return e
    }
    throw ConformanceFailure("expected error \(code), got success", file: file, line: line)
}

private func ev(_ type: String, _ json: String = "{}", id: String? = nil) -> EventData {
    EventData(id: id ?? UUID().uuidString.lowercased(), type: type, data: Data(json.utf8))
}

@discardableResult
private func append(
    _ s: any EventStoreAdapter, _ stream: String, _ events: [EventData], _ expected: ExpectedVersion = .any,
    hook: AppendTransactionHook? = nil
) async throws -> AppendResult {
    try await s.append(AppendRequest(streamID: stream, events: events, expectedVersion: expected), hook: hook)
}

// MARK: - Cases

private func appendAssigns(_ s: ConformanceStorage) async throws {
    let r1 = try await append(s.events, "order-1", [ev("OrderCreated", #"{"n":1}"#), ev("ItemAdded", #"{"n":2}"#)])
    try check(r1.fromVersion == 1 && r1.toVersion == 2, "versions \(r1.fromVersion)...\(r1.toVersion)")
    try check(r1.fromPosition == 1 && r1.toPosition == 2, "positions \(r1.fromPosition)...\(r1.toPosition)")
    try check(r1.events.map(\.version) == [1, 2] && r1.events.map(\.globalPosition) == [1, 2], "stored events")
    try check(!r1.isReplay, "a first append is not a replay")
    let r2 = try await append(s.events, "order-2", [ev("OrderCreated")])
    try check(r2.fromVersion == 1 && r2.fromPosition == 3, "second stream starts at version 1, position 3")
    let r3 = try await append(s.events, "order-1", [ev("ItemAdded", #"{"n":3}"#)])
    try check(r3.fromVersion == 3 && r3.toPosition == 4, "third append: version 3, position 4")
    let head = try await s.events.headPosition()
    try check(head == 4, "head \(head)")
    let loaded = try await s.events.readStream("order-1", from: 1, limit: 100, direction: .forward)
    try check(loaded.map(\.type) == ["OrderCreated", "ItemAdded", "ItemAdded"], "types \(loaded.map(\.type))")
    try check(loaded.map { String(decoding: $0.data, as: UTF8.self) } == [#"{"n":1}"#, #"{"n":2}"#, #"{"n":3}"#], "data")
    try check(loaded.allSatisfy { $0.streamID == "order-1" }, "stream IDs")
    try check(loaded.map(\.id) == r1.eventIDs + r3.eventIDs, "event IDs kept")
    try check(abs(loaded[0].timestamp.timeIntervalSinceNow) < 60, "timestamp set at commit")
}

private func readStream(_ s: ConformanceStorage) async throws {
    try await append(s.events, "s-1", (1...10).map { ev("E", #"{"i":\#($0)}"#) })
    let all = try await s.events.readStream("s-1", from: 1, limit: 1000, direction: .forward)
    try check(all.map(\.version) == Array(1...10), "whole stream")
    let page = try await s.events.readStream("s-1", from: 4, limit: 3, direction: .forward)
    try check(page.map(\.version) == [4, 5, 6], "from 4 limit 3: \(page.map(\.version))")
    let tail = try await s.events.readStream("s-1", from: 9, limit: 10, direction: .forward)
    try check(tail.map(\.version) == [9, 10], "tail \(tail.map(\.version))")
    let past = try await s.events.readStream("s-1", from: 11, limit: 10, direction: .forward)
    try check(past.isEmpty, "past the end is empty")
    let back = try await s.events.readStream("s-1", from: -1, limit: 3, direction: .backward)
    try check(back.map(\.version) == [10, 9, 8], "backward from -1: \(back.map(\.version))")
    let back2 = try await s.events.readStream("s-1", from: 2, limit: 5, direction: .backward)
    try check(back2.map(\.version) == [2, 1], "backward from 2: \(back2.map(\.version))")
    let missing = try await s.events.readStream("nope", from: 1, limit: 10, direction: .forward)
    try check(missing.isEmpty, "missing stream reads empty")
}

private func expectedVersions(_ s: ConformanceStorage) async throws {
    try await append(s.events, "acc-1", [ev("Opened")], .noStream)
    var e = try await expectError(.concurrencyConflict) { try await append(s.events, "acc-1", [ev("X")], .noStream) }
    try check(e.streamID == "acc-1" && e.expectedVersion == 0 && e.actualVersion == 1, "noStream conflict details \(e)")
    e = try await expectError(.concurrencyConflict) { try await append(s.events, "acc-1", [ev("X")], .exact(5)) }
    try check(e.expectedVersion == 5 && e.actualVersion == 1, "exact conflict details \(e)")
    e = try await expectError(.streamNotFound) { try await append(s.events, "acc-2", [ev("X")], .streamExists) }
    try check(e.streamID == "acc-2", "stream not found names the stream")
    _ = try await expectError(.concurrencyConflict) { try await append(s.events, "acc-2", [ev("X")], .exact(1)) }
    try check(try await s.events.headPosition() == 1, "failed checks write nothing")
    try check(try await s.events.streamInfo("acc-2") == nil, "no stream created by a failed check")
    try await append(s.events, "acc-1", [ev("Deposited")], .exact(1))
    try await append(s.events, "acc-1", [ev("Deposited")], .streamExists)
    try await append(s.events, "acc-1", [ev("Deposited")], .any)
    try await append(s.events, "acc-3", [ev("Opened")], .exact(0))
    let info = try await s.events.streamInfo("acc-1")
    try check(info?.version == 4, "version after appends: \(String(describing: info?.version))")
}

private func concurrentAppends(_ s: ConformanceStorage) async throws {
    try await append(s.events, "race-1", [ev("Start")])
    let outcomes = await withTaskGroup(of: Result<AppendResult, any Error>.self) { group in
        for i in 0..<5 {
            group.addTask {
                do { return .success(try await append(s.events, "race-1", [ev("Try", #"{"i":\#(i)}"#)], .exact(1))) } catch {
                    return .failure(error)
                }
            }
        }
        var all: [Result<AppendResult, any Error>] = []
        for await r in group { all.append(r) }
        return all
    }
    let wins = outcomes.filter { if case .success = $0 { return true } else { return false } }
    try check(wins.count == 1, "exactly one of 5 concurrent appends wins, got \(wins.count)")
    for case .failure(let error) in outcomes {
        guard let e = error as? MinkError else { throw ConformanceFailure("unexpected error \(error)", file: #filePath, line: #line) }
        try check(e.code == .concurrencyConflict && e.expectedVersion == 1 && e.actualVersion == 2, "loser error \(e)")
    }
    let events = try await s.events.readStream("race-1", from: 1, limit: 100, direction: .forward)
    try check(events.count == 2, "stream has 2 events, got \(events.count)")
}

private func streamInfo(_ s: ConformanceStorage) async throws {
    try check(try await s.events.streamInfo("order-9") == nil, "missing stream has no info")
    try await append(s.events, "order-9", [ev("A"), ev("B")])
    try await append(s.events, "order-9", [ev("C")])
    let info = try await s.events.streamInfo("order-9")
    try check(info?.version == 3 && info?.eventCount == 3, "info \(String(describing: info))")
    try check(info?.category == "order", "category")
    try check(info.map { $0.createdAt <= $0.updatedAt } ?? false, "createdAt <= updatedAt")
}

private func globalLog(_ s: ConformanceStorage) async throws {
    try await append(s.events, "order-1", [ev("OrderCreated"), ev("ItemAdded")])
    try await append(s.events, "customer-1", [ev("CustomerRegistered")])
    try await append(s.events, "order-2", [ev("OrderCreated")])
    try await append(s.events, "order_x-1", [ev("Odd")])
    try await append(s.events, "orderzx-1", [ev("Odd")])
    try await append(s.events, "ord%-1", [ev("Odd")])
    let all = try await s.events.readAll(after: 0, filter: .all, limit: 100)
    try check(all.map(\.globalPosition) == Array(1...7), "all positions \(all.map(\.globalPosition))")
    let after = try await s.events.readAll(after: 2, filter: .all, limit: 2)
    try check(after.map(\.globalPosition) == [3, 4], "after 2 limit 2 \(after.map(\.globalPosition))")
    let orders = try await s.events.readAll(after: 0, filter: EventFilter(category: "order"), limit: 100)
    try check(orders.map(\.globalPosition) == [1, 2, 4], "category order \(orders.map(\.globalPosition))")
    let literal = try await s.events.readAll(after: 0, filter: EventFilter(category: "order_x"), limit: 100)
    try check(literal.map(\.streamID) == ["order_x-1"], "_ is literal in category: \(literal.map(\.streamID))")
    let percent = try await s.events.readAll(after: 0, filter: EventFilter(category: "ord%"), limit: 100)
    try check(percent.map(\.streamID) == ["ord%-1"], "% is literal in category: \(percent.map(\.streamID))")
    let types = try await s.events.readAll(after: 0, filter: EventFilter(eventTypes: ["OrderCreated", "CustomerRegistered"]), limit: 100)
    try check(types.map(\.globalPosition) == [1, 3, 4], "types \(types.map(\.globalPosition))")
    let streams = try await s.events.readAll(after: 1, filter: EventFilter(streamIDs: ["order-1", "order-2"]), limit: 100)
    try check(streams.map(\.globalPosition) == [2, 4], "streams \(streams.map(\.globalPosition))")
    let both = try await s.events.readAll(after: 0, filter: EventFilter(category: "order", eventTypes: ["ItemAdded"]), limit: 100)
    try check(both.map(\.globalPosition) == [2], "category+type \(both.map(\.globalPosition))")
    let none = try await s.events.readAll(after: 7, filter: .all, limit: 100)
    try check(none.isEmpty, "after head is empty")
    try check(try await s.events.headPosition() == 7, "head 7")
}

private func globalLogByteBudget(_ s: ConformanceStorage) async throws {
    // Six events of 100 data bytes each (the fourth in another category).
    let payload = #"{"x":""# + String(repeating: "a", count: 92) + #""}"#
    for (i, stream) in ["a-1", "a-1", "a-2", "b-1", "a-1", "a-3"].enumerated() {
        try await append(s.events, stream, [ev("E\(i)", payload)])
    }
    func page(after: UInt64, _ filter: EventFilter = .all, limit: Int = 100, maxBytes: Int) async throws -> [UInt64] {
        try await s.events.readAll(after: after, filter: filter, limit: limit, maxBytes: maxBytes).map(\.globalPosition)
    }
    // The event that reaches the budget is included, none after it.
    let first = try await page(after: 0, maxBytes: 250)
    try check(first == [1, 2, 3], "250 bytes from 0: \(first)")
    try check(try await page(after: 0, maxBytes: 300) == [1, 2, 3], "300 bytes from 0")
    try check(try await page(after: 0, maxBytes: 301) == [1, 2, 3, 4], "301 bytes from 0")
    try check(try await page(after: 3, maxBytes: 1) == [4], "one event at least")
    try check(try await page(after: 0, maxBytes: .max) == Array(1...6), "no budget")
    try check(try await page(after: 0, limit: 2, maxBytes: 10_000) == [1, 2], "the limit still counts")
    try check(try await page(after: 6, maxBytes: 10_000).isEmpty, "after the head")
    // Filtered: the budget counts the events returned.
    let category = try await page(after: 0, EventFilter(category: "a"), maxBytes: 150)
    try check(category == [1, 2], "category a, 150 bytes: \(category)")
    let later = try await page(after: 3, EventFilter(category: "a"), maxBytes: 150)
    try check(later == [5, 6], "category a after 3, 150 bytes: \(later)")
}

private func idempotency(_ s: ConformanceStorage) async throws {
    let batch = [ev("A", #"{"a":1}"#, id: "id-1"), ev("B", #"{"b":2}"#, id: "id-2")]
    let first = try await append(s.events, "idem-1", batch, .noStream)
    let retry = try await append(s.events, "idem-1", batch, .noStream)
    try check(retry.isReplay, "a retry is recognised as a replay")
    try check(retry.fromVersion == first.fromVersion && retry.toPosition == first.toPosition, "replay returns the original result")
    try check(try await s.events.headPosition() == 2, "a replay writes nothing")
    _ = try await expectError(.duplicateEventID) {
        try await append(s.events, "idem-1", [ev("A", #"{"a":999}"#, id: "id-1")])
    }
    _ = try await expectError(.duplicateEventID) {
        try await append(s.events, "idem-1", [ev("A", #"{"a":1}"#, id: "id-1"), ev("C", "{}", id: "id-3")])
    }
    try check(try await s.events.headPosition() == 2, "rejected duplicates write nothing")
    let other = try await append(s.events, "idem-2", [ev("A", #"{"a":1}"#, id: "id-1")])
    try check(!other.isReplay && other.fromVersion == 1, "IDs are unique per stream, not globally")

    // Events of two appends (consecutive versions, another commit) are not one earlier append:
    // a "retry" stitched from them is a reuse of IDs, not a replay.
    try await Task.sleep(for: .milliseconds(2))  // another commit time, whatever the clock's grain
    _ = try await append(s.events, "idem-1", [ev("C", #"{"c":3}"#, id: "id-3")])
    _ = try await expectError(.duplicateEventID) {
        try await append(s.events, "idem-1", [ev("B", #"{"b":2}"#, id: "id-2"), ev("C", #"{"c":3}"#, id: "id-3")])
    }
    let single = try await append(s.events, "idem-1", [ev("C", #"{"c":3}"#, id: "id-3")])
    try check(single.isReplay && single.fromVersion == 3, "a retry of the later append alone is still a replay")
}

private struct HookFailure: Error {}

private func transactionHook(_ s: ConformanceStorage) async throws {
    let r = try await append(s.events, "cart-1", [ev("Added", #"{"sku":"a"}"#)], hook: { events, tx in
        for e in events {
            try tx.putDocument("carts", id: e.streamID, json: Data(#"{"items":\#(e.version)}"#.utf8))
        }
        try tx.setCheckpoint("carts-inline", to: events.last!.globalPosition)
    })
    try check(r.toPosition == 1, "hooked append committed")
    let doc = try await s.readModels.document("carts", id: "cart-1")
    try check(doc.map { String(decoding: $0, as: UTF8.self) }?.contains(#""items":1"#) ?? false, "document written in the append's transaction")
    try check(try await s.readModels.checkpoint("carts-inline") == 1, "checkpoint written in the append's transaction")
    do {
        try await append(s.events, "cart-1", [ev("Added")], hook: { _, tx in
            try tx.putDocument("carts", id: "cart-1", json: Data(#"{"items":99}"#.utf8))
            throw HookFailure()
        })
        throw ConformanceFailure("a throwing hook must fail the append", file: #filePath, line: #line)
    } catch is HookFailure {}
    try check(try await s.events.headPosition() == 1, "a throwing hook writes no events")
    let after = try await s.readModels.document("carts", id: "cart-1")
    try check(after.map { String(decoding: $0, as: UTF8.self) }?.contains(#""items":1"#) ?? false, "a throwing hook writes no documents")
    try check(try await s.events.streamInfo("cart-1")?.version == 1, "stream unchanged")
}

private func readModelTransactions(_ s: ConformanceStorage) async throws {
    try await s.readModels.transaction { tx in
        try tx.putDocument("m", id: "a", json: Data(#"{"v":1}"#.utf8))
        try tx.putDocument("m", id: "b", json: Data(#"{"v":2}"#.utf8))
        try tx.setCheckpoint("p", to: 10)
        let seen = try tx.document("m", id: "a")
        try check(seen != nil, "a transaction reads its own writes")
    }
    try check(try await s.readModels.checkpoint("p") == 10, "checkpoint committed")
    do {
        try await s.readModels.transaction { tx in
            try tx.putDocument("m", id: "c", json: Data(#"{"v":3}"#.utf8))
            try tx.deleteDocument("m", id: "a")
            try tx.setCheckpoint("p", to: 20)
            throw HookFailure()
        }
    } catch is HookFailure {}
    try check(try await s.readModels.checkpoint("p") == 10, "rolled-back checkpoint")
    try check(try await s.readModels.document("m", id: "c") == nil, "rolled-back insert")
    try check(try await s.readModels.document("m", id: "a") != nil, "rolled-back delete")
    try await s.readModels.transaction { tx in try tx.deleteDocument("m", id: "a"); try tx.deleteDocument("m", id: "zzz") }
    try check(try await s.readModels.document("m", id: "a") == nil, "delete")
    try check(try await s.readModels.checkpoint("unknown") == 0, "unknown checkpoint is 0")
    // Several checkpoints in one read: in the order asked, 0 for a missing one, a name twice
    // answered twice, and what this transaction wrote before the read.
    let many = try await s.readModels.transaction(.relaxed) { tx -> [UInt64] in
        try tx.setCheckpoint("q", to: 7)
        return try tx.checkpoints(["q", "missing", "p", "q"])
    }
    try check(many == [7, 0, 10, 7], "checkpoints(_:) answered \(many)")
    try check(try await s.readModels.checkpoint("q") == 7, "a relaxed transaction commits its checkpoint")
}

private let queryDocuments: [(String, String)] = [
    ("o1", #"{"status":"pending","total":150,"priority":"low","tags":["gift","rush"],"address":{"city":"Berlin"},"createdAt":"2026-01-03","note":null}"#),
    ("o2", #"{"status":"pending","total":50,"priority":"high","tags":[],"address":{"city":"Paris"},"createdAt":"2026-01-01"}"#),
    ("o3", #"{"status":"shipped","total":300,"priority":"low","tags":["rush"],"address":{"city":"Berlin"},"createdAt":"2026-01-02","note":"leave at door"}"#),
    ("o4", #"{"status":"cancelled","total":100,"priority":"high","address":{"city":"Bern"},"createdAt":"2026-01-05","note":"100% cotton_x"}"#),
    ("o5", #"{"status":"Pending","total":"n/a","priority":"low","createdAt":"2026-01-04","flag":true}"#),
]

private func queries(_ s: ConformanceStorage) async throws {
    try await s.readModels.transaction { tx in
        for (id, json) in queryDocuments { try tx.putDocument("orders", id: id, json: Data(json.utf8)) }
        try tx.putDocument("other", id: "x", json: Data(#"{"status":"pending"}"#.utf8))
    }
    func ids(_ q: Query, _ message: String, _ expected: [String], ordered: Bool = false) async throws {
        let found = try await s.readModels.find("orders", query: q).map(\.id)
        try check(ordered ? found == expected : found.sorted() == expected.sorted(), "\(message): expected \(expected), got \(found)")
        if !ordered {
            let n = try await s.readModels.count("orders", query: q)
            try check(n == Int64(expected.count), "\(message): count \(n)")
        }
    }
    try await ids(Query(), "all", ["o1", "o2", "o3", "o4", "o5"])
    try await ids(Query().where("status", "=", "pending"), "=", ["o1", "o2"])
    try await ids(Query().where("status", "!=", "pending"), "!=", ["o3", "o4", "o5"])
    try await ids(Query().where("total", ">", 100), ">", ["o1", "o3"])
    try await ids(Query().where("total", ">=", 100), ">=", ["o1", "o3", "o4"])
    try await ids(Query().where("total", "<", 100), "<", ["o2"])
    try await ids(Query().where("total", "<=", 100), "<=", ["o2", "o4"])
    try await ids(Query().where("total", "!=", 100), "!= across types", ["o1", "o2", "o3", "o5"])
    try await ids(Query().where("status", "in", ["shipped", "cancelled", "nope"]), "in", ["o3", "o4"])
    try await ids(Query().where("status", "not in", ["pending", "shipped"]), "not in", ["o4", "o5"])
    try await ids(Query().where("status", "like", "pend%"), "like (case-sensitive)", ["o1", "o2"])
    try await ids(Query().where("status", "like", "P_nding"), "like _", ["o5"])
    try await ids(Query().where("note", "like", "100\\%%"), "like with escaped %", ["o4"])
    try await ids(Query().where("note", "is null"), "is null (missing or null)", ["o1", "o2", "o5"])
    try await ids(Query().where("note", "is not null"), "is not null", ["o3", "o4"])
    try await ids(Query().where("tags", "contains", "rush"), "contains in array", ["o1", "o3"])
    try await ids(Query().where("note", "contains", "door"), "contains in string", ["o3"])
    try await ids(Query().where("total", "between", [50, 150]), "between inclusive", ["o1", "o2", "o4"])
    try await ids(Query().where("createdAt", "between", ["2026-01-02", "2026-01-04"]), "between strings", ["o1", "o3", "o5"])
    try await ids(Query().where("address.city", "=", "Berlin"), "dotted path", ["o1", "o3"])
    try await ids(Query().where("flag", "=", true), "boolean", ["o5"])
    try await ids(Query().where("status", "=", "pending").and("total", ">", 100).or("priority", "=", "high"), "and binds tighter than or", ["o1", "o2", "o4"])
    try await ids(Query().where("priority", "=", "high").or("status", "=", "shipped").and("total", ">", 1000), "or then and", ["o2", "o4"])
    try await ids(Query().where("total", ">", 0).orderBy("total", descending: true), "order desc", ["o3", "o1", "o4", "o2"], ordered: true)
    try await ids(Query().orderBy("createdAt"), "order asc", ["o2", "o3", "o1", "o5", "o4"], ordered: true)
    try await ids(Query().orderBy("priority").orderBy("createdAt", descending: true), "two keys", ["o4", "o2", "o5", "o1", "o3"], ordered: true)
    try await ids(Query().orderBy("createdAt").limit(2).offset(1), "limit offset", ["o3", "o1"], ordered: true)
    try await ids(Query().orderBy("createdAt").offset(4), "offset only", ["o4"], ordered: true)
    try await ids(Query().orderBy("note"), "nulls first, ties by id", ["o1", "o2", "o5", "o4", "o3"], ordered: true)
    let limited = try await s.readModels.count("orders", query: Query().limit(1))
    try check(limited == 5, "count ignores limit: \(limited)")
    _ = try await expectError(.invalidQuery) { _ = try await s.readModels.find("orders", query: Query().where("a'); drop table x;--", "=", 1)) }
    _ = try await expectError(.invalidQuery) { _ = try await s.readModels.find("orders", query: Query().where("status", "~", 1)) }
    _ = try await expectError(.invalidQuery) { _ = try await s.readModels.count("orders", query: Query().orderBy("a b")) }
    let empty = try await s.readModels.find("nothing", query: Query())
    try check(empty.isEmpty, "unknown model is empty")
}

/// Numbers a `Double` cannot hold compare as Swift reads them (±infinity, 0) — PostgreSQL's
/// float8 cast failed with "out of range" on every query of the field — and a path component
/// spelled `NULL` is a name like any other (PostgreSQL read an unquoted `NULL` in its path
/// literal as SQL NULL, so `obj.NULL` matched nothing and `is null` everything).
private func queryEdges(_ s: ConformanceStorage) async throws {
    let documents = [
        ("h1", #"{"v":1e400,"obj":{"NULL":1,"Null":7}}"#),
        ("h2", #"{"v":-1e400,"obj":{"NULL":2}}"#),
        ("h3", #"{"v":1e-400}"#),
        ("h4", #"{"v":5,"obj":{"null":3}}"#),
    ]
    try await s.readModels.transaction { tx in
        for (id, json) in documents { try tx.putDocument("edges", id: id, json: Data(json.utf8)) }
    }
    func ids(_ q: Query, _ message: String, _ expected: [String], ordered: Bool = false) async throws {
        let found = try await s.readModels.find("edges", query: q).map(\.id)
        try check(ordered ? found == expected : found.sorted() == expected.sorted(), "\(message): expected \(expected), got \(found)")
        let n = try await s.readModels.count("edges", query: q)
        try check(n == Int64(expected.count), "\(message): count \(n)")
    }
    try await ids(Query().where("v", ">", 10), "1e400 is +infinity", ["h1"])
    try await ids(Query().where("v", "<", 0), "-1e400 is -infinity", ["h2"])
    try await ids(Query().where("v", "=", 0), "1e-400 is 0", ["h3"])
    try await ids(Query().where("v", "in", [5, 0]), "in", ["h3", "h4"])
    try await ids(Query().where("v", "between", [-1, 6]), "between", ["h3", "h4"])
    try await ids(Query().orderBy("v"), "ordered as Doubles", ["h2", "h3", "h4", "h1"], ordered: true)
    try await ids(Query().where("obj.NULL", "=", 1), "a field named NULL", ["h1"])
    try await ids(Query().where("obj.Null", "=", 7), "a field named Null", ["h1"])
    try await ids(Query().where("obj.null", "=", 3), "a field named null", ["h4"])
    try await ids(Query().where("obj.NULL", "is null"), "is null on a field named NULL", ["h3", "h4"])
    try await ids(Query().where("obj.NULL", ">", 0).orderBy("obj.NULL", descending: true), "ordered by a field named NULL", ["h2", "h1"], ordered: true)
}

/// A page's documents and its total come from one state of the model: with documents written
/// meanwhile (five per transaction), an unpaged page holds exactly `total` documents, never fewer
/// (the HTTP API read them with two queries, and a page of 500 said `total: 520`).
private func findWithTotalIsOneRead(_ s: ConformanceStorage) async throws {
    let store = s.readModels
    let writer = Task {
        for i in 0..<200 {
            try await store.transaction { tx in
                for j in 0..<5 { try tx.putDocument("paged", id: "d\(i)-\(j)", json: Data(#"{"n":\#(i)}"#.utf8)) }
            }
        }
    }
    let query = Query().where("n", ">=", 0).orderBy("n").limit(10_000)
    var mismatches: [String] = []
    for _ in 0..<100 {
        let (documents, total) = try await store.findWithTotal("paged", query: query)
        if Int64(documents.count) != total || total % 5 != 0 { mismatches.append("\(documents.count) documents, total \(total)") }
    }
    try await writer.value
    try check(mismatches.isEmpty, "pages that disagree with their total: \(mismatches.prefix(5))")
    let (documents, total) = try await store.findWithTotal("paged", query: query.limit(7).offset(3))
    try check(documents.count == 7 && total == 1000, "a page of 7 of 1,000: \(documents.count), \(total)")
    let found = try await store.find("paged", query: query.limit(7).offset(3)).map(\.id)
    try check(documents.map(\.id) == found, "the same page as find: \(documents.map(\.id)) vs \(found)")
}

private func bytesRoundTrip(_ s: ConformanceStorage) async throws {
    let streamIDs = ["it's \"quoted\"", "ünïcødé-💥", "100%_done-x", "back\\slash-1", "a/b/c", "semi;colon'--"]
    let data = #"{"s":"nul\u0000inside","q":"'\"","u":"ü💥","p":"%_","n":12345678901234567890,"f":1.50,"nested":{"a":[1,2,{"b":null}]}}"#
    for (i, id) in streamIDs.enumerated() {
        try await append(s.events, id, [EventData(id: "e-\(i)", type: "Type 'with' \"quotes\" ü", data: Data(data.utf8))])
    }
    for id in streamIDs {
        let events = try await s.events.readStream(id, from: 1, limit: 10, direction: .forward)
        try check(events.count == 1 && events[0].streamID == id, "stream ID round-trip: \(id)")
        try check(events[0].type == "Type 'with' \"quotes\" ü", "type round-trip")
        try check(String(decoding: events[0].data, as: UTF8.self) == data, "data round-trip byte for byte: \(String(decoding: events[0].data, as: UTF8.self))")
        try check(try await s.events.streamInfo(id)?.version == 1, "info for \(id)")
    }
    let meta = Metadata(correlationID: "c'1", causationID: "c\"2", userID: "ü", tenantID: nil, custom: ["k%": "v_", "empty": ""])
    try await append(s.events, "meta-1", [EventData(id: "m1", type: "M", data: Data("{}".utf8), metadata: meta)])
    let m = try await s.events.readStream("meta-1", from: 1, limit: 1, direction: .forward)
    try check(m.first?.metadata == meta, "metadata round-trip: \(String(describing: m.first?.metadata))")
    let docJSON = #"{"name":"it's \"x\" ü💥","nul":"a\u0000b"}"#
    try await s.readModels.transaction { try $0.putDocument("weird", id: "id '\"%_ü", json: Data(docJSON.utf8)) }
    let doc = try await s.readModels.document("weird", id: "id '\"%_ü")
    let parsed = try doc.map { try JSONValue(json: $0) }
    try check(parsed == (try JSONValue(json: Data(docJSON.utf8))), "document round-trip")
    let found = try await s.readModels.find("weird", query: Query().where("name", "=", "it's \"x\" ü💥"))
    try check(found.map(\.id) == ["id '\"%_ü"], "query on quoted unicode value")
}

private func tenants(_ s: ConformanceStorage) async throws {
    let a = try s.events.forTenant("tenant-a"), b = try s.events.forTenant("tenant-b")
    try await append(a, "order-1", [ev("A1"), ev("A2")])
    try await append(b, "order-1", [ev("B1")])
    try await append(b, "order-2", [ev("B2")])
    let la = try await a.readStream("order-1", from: 1, limit: 10, direction: .forward)
    let lb = try await b.readStream("order-1", from: 1, limit: 10, direction: .forward)
    try check(la.map(\.type) == ["A1", "A2"] && lb.map(\.type) == ["B1"], "same stream ID, separate streams")
    try check(lb.map(\.globalPosition) == [1], "positions are per tenant")
    let ha = try await a.headPosition(), hb = try await b.headPosition()
    try check(ha == 2 && hb == 2, "heads per tenant")
    try check(try await a.readAll(after: 0, filter: .all, limit: 100).map(\.type) == ["A1", "A2"], "log per tenant")
    try check(try await a.streamInfo("order-2") == nil, "info per tenant")
    try check(try await s.events.headPosition() == 0, "the default tenant sees nothing of the others")
    let ra = try s.readModels.forTenant("tenant-a"), rb = try s.readModels.forTenant("tenant-b")
    try await ra.transaction { try $0.putDocument("orders", id: "1", json: Data(#"{"t":"a"}"#.utf8)); try $0.setCheckpoint("p", to: 5) }
    try check(try await rb.document("orders", id: "1") == nil, "read models per tenant")
    try check(try await rb.count("orders", query: Query()) == 0, "counts per tenant")
    try check(try await rb.checkpoint("p") == 0, "checkpoints per tenant")
    let sa = try s.snapshots.forTenant("tenant-a"), sb = try s.snapshots.forTenant("tenant-b")
    try await sa.saveSnapshot(Snapshot(streamID: "order-1", version: 2, state: Data("{}".utf8)))
    try check(try await sb.loadSnapshot(streamID: "order-1") == nil, "snapshots per tenant")
    for bad in ["../x", "A", String(repeating: "a", count: 64), "a\u{0}", "", "-a"] {
        do {
            _ = try s.events.forTenant(bad)
            throw ConformanceFailure("tenant ID \(bad.debugDescription) must be refused", file: #filePath, line: #line)
        } catch let e as MinkError {
            try check(e.code == .invalidTenant, "invalid tenant error: \(e)")
        }
    }
}

private func snapshots(_ s: ConformanceStorage) async throws {
    try check(try await s.snapshots.loadSnapshot(streamID: "agg-1") == nil, "no snapshot yet")
    try await s.snapshots.saveSnapshot(Snapshot(streamID: "agg-1", version: 5, state: Data(#"{"v":5}"#.utf8)))
    try await s.snapshots.saveSnapshot(Snapshot(streamID: "agg-1", version: 10, state: Data(#"{"v":10}"#.utf8)))
    try await s.snapshots.saveSnapshot(Snapshot(streamID: "agg-1", version: 7, state: Data(#"{"v":7}"#.utf8)))
    let snap = try await s.snapshots.loadSnapshot(streamID: "agg-1")
    try check(snap?.version == 10 && snap?.state == Data(#"{"v":10}"#.utf8), "newest snapshot kept: \(String(describing: snap?.version))")
    let big = Data(("{\"blob\":\"" + String(repeating: "x", count: 200_000) + "\"}").utf8)
    try await s.snapshots.saveSnapshot(Snapshot(streamID: "agg-2", version: 1, state: big))
    try check(try await s.snapshots.loadSnapshot(streamID: "agg-2")?.state == big, "large state round-trip")
    // `storeSnapshot` answers the version stored afterwards: its own, or the newer one kept.
    let kept = try await s.snapshots.storeSnapshot(Snapshot(streamID: "agg-1", version: 8, state: Data(#"{"v":8}"#.utf8)))
    try check(kept == 10, "an older snapshot answers the newer version kept: \(kept)")
    let stored = try await s.snapshots.storeSnapshot(Snapshot(streamID: "agg-1", version: 12, state: Data(#"{"v":12}"#.utf8)))
    try check(stored == 12, "a newer snapshot answers its own version: \(stored)")
    let equal = try await s.snapshots.storeSnapshot(Snapshot(streamID: "agg-1", version: 12, state: Data(#"{"v":"12b"}"#.utf8)))
    try check(equal == 12, "an equal version replaces the stored one: \(equal)")
    try check(try await s.snapshots.loadSnapshot(streamID: "agg-1")?.state == Data(#"{"v":"12b"}"#.utf8), "the equal version's state stored")
    try check(try await s.snapshots.storeSnapshot(Snapshot(streamID: "agg-3", version: 1, state: Data("{}".utf8))) == 1, "a first snapshot")
}

private func readersInOrder(_ s: ConformanceStorage) async throws {
    let writers = 4, appendsPerWriter = 40
    let seen = try await withThrowingTaskGroup(of: [UInt64].self) { group in
        for w in 0..<writers {
            group.addTask {
                for i in 0..<appendsPerWriter { try await append(s.events, "w\(w)-\(i % 3)", [ev("E"), ev("E")]) }
                return []
            }
        }
        group.addTask {
            var last: UInt64 = 0
            var positions: [UInt64] = []
            let giveUp = ContinuousClock.now + .seconds(60)
            while positions.count < writers * appendsPerWriter * 2 {
                if ContinuousClock.now >= giveUp {
                    throw ConformanceFailure("the reader saw \(positions.count) of \(writers * appendsPerWriter * 2) events in 60 s", file: #filePath, line: #line)
                }
                let page = try await s.events.readAll(after: last, filter: .all, limit: 50)
                for e in page {
                    if e.globalPosition <= last { throw ConformanceFailure("position \(e.globalPosition) after \(last)", file: #filePath, line: #line) }
                    last = e.globalPosition
                    positions.append(e.globalPosition)
                }
                if page.isEmpty { try await Task.sleep(for: .milliseconds(1)) }
            }
            return positions
        }
        var result: [UInt64] = []
        for try await r in group where !r.isEmpty { result = r }
        return result
    }
    let total = UInt64(writers * appendsPerWriter * 2)
    // Had a lower position committed after a reader passed it, the reader would have missed it.
    try check(seen == Array(1...total), "the reader saw every position once, in order (\(seen.count) of \(total))")
    for w in 0..<writers {
        for k in 0..<3 {
            let versions = try await s.events.readStream("w\(w)-\(k)", from: 1, limit: 1000, direction: .forward).map(\.version)
            try check(versions == Array(1...Int64(versions.count)), "dense versions in w\(w)-\(k)")
        }
    }
}

private func modelAdmin(_ s: ConformanceStorage) async throws {
    try await s.readModels.transaction { tx in
        try tx.putDocument("keep", id: "1", json: Data(#"{"a":1}"#.utf8))
        try tx.putDocument("drop", id: "1", json: Data(#"{"a":1}"#.utf8))
    }
    try await s.readModels.createIndex("keep", field: try FieldPath("a"))
    try check(try await s.readModels.modelNames().contains("drop"), "model names list models with documents")
    try await s.readModels.dropModel("drop")
    try check(try await s.readModels.document("drop", id: "1") == nil, "dropped")
    try check(try await s.readModels.document("keep", id: "1") != nil, "others kept")
    let names = try await s.readModels.modelNames()
    try check(names.contains("keep") && !names.contains("drop"), "names after drop: \(names)")
}
