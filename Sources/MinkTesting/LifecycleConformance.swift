import Foundation
import Mink

/// The stream life-cycle part of the conformance suite (``StreamLifecycleAdapter``): listing,
/// soft and hard deletion with the `$deletions` record, tombstones, retention and the scavenger.
/// Part of ``AdapterConformance/cases``.
extension AdapterConformance {
    static let lifecycleCases: [Case] = [
        Case(name: "soft delete removes events and snapshot, keeps the version, records $StreamDeleted", body: softDelete),
        Case(name: "hard delete leaves a tombstone for ever", body: hardDelete),
        Case(name: "positions are never reused after deleting the newest events", body: positionsNotReused),
        Case(name: "listing pages bytewise with category and prefix filters", body: listing),
        Case(name: "retention rules: stored, applied at read time, scavenged", body: retention),
        Case(name: "imported deletions re-create the version counter and tombstone", body: importedDeletion),
        Case(name: "reads for retention answer what the separate calls answer", body: readsForRetention),
    ]
}

// MARK: - Helpers

private func lcCheck(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #filePath, line: UInt = #line) throws {
    if !condition { throw ConformanceFailure(message(), file: file, line: line) }
}

private func lcExpectError(
    _ code: MinkError.Code, file: StaticString = #filePath, line: UInt = #line, _ body: () async throws -> Void
) async throws {
    do {
        try await body()
    } catch let e as MinkError {
        try lcCheck(e.code == code, "expected error \(code), got \(e)", file: file, line: line)
        return
    }
    throw ConformanceFailure("expected error \(code), got success", file: file, line: line)
}

private func lifecycle(_ s: ConformanceStorage) throws -> any StreamLifecycleAdapter {
    guard let l = s.events as? any StreamLifecycleAdapter else {
        throw ConformanceFailure("the adapter does not implement StreamLifecycleAdapter", file: #filePath, line: #line)
    }
    return l
}

private func events(_ n: Int, type: String = "E") -> [EventData] {
    (0..<n).map { i in EventData(id: UUID().uuidString.lowercased(), type: type, data: Data("{\"i\":\(i)}".utf8)) }
}

@discardableResult
private func put(_ a: any EventStoreAdapter, _ stream: String, _ n: Int, _ expected: ExpectedVersion = .any) async throws -> AppendResult {
    try await a.append(AppendRequest(streamID: stream, events: events(n), expectedVersion: expected), hook: nil)
}

private func fields(_ e: Event) throws -> [String: JSONValue] {
    guard case .object(let f) = try JSONValue(json: e.data) else { throw ConformanceFailure("record data is not an object", file: #filePath, line: #line) }
    return f
}

// MARK: - Cases

private func softDelete(_ s: ConformanceStorage) async throws {
    let a = s.events
    let l = try lifecycle(s)
    let first = try await put(a, "order-1", 3)
    try await put(a, "other-1", 1)
    try await s.snapshots.saveSnapshot(Snapshot(streamID: "order-1", version: 3, state: Data("{}".utf8)))

    try await lcExpectError(.concurrencyConflict) { _ = try await l.deleteStream("order-1", expectedVersion: .exact(2), hard: false, hook: nil) }
    try lcCheck(try await a.readStream("order-1", from: 1, limit: 10, direction: .forward).count == 3, "a failed check deletes nothing")

    let d = try await l.deleteStream("order-1", expectedVersion: .exact(3), hard: false, hook: nil)
    try lcCheck(d == StreamDeletion(streamID: "order-1", deletedEvents: 3, lastVersion: 3, hard: false, position: 5), "deletion result \(d)")
    try lcCheck(try await a.readStream("order-1", from: 1, limit: 10, direction: .forward).isEmpty, "events gone")
    try lcCheck(try await a.streamInfo("order-1") == nil, "info of a soft-deleted stream is nil")
    try lcCheck(try await s.snapshots.loadSnapshot(streamID: "order-1") == nil, "snapshot gone")
    try lcCheck(try await l.isTombstoned("order-1") == false, "no tombstone after a soft delete")

    let log = try await a.readAll(after: 0, filter: .all, limit: 100)
    try lcCheck(log.map(\.globalPosition) == [4, 5], "the log skips the deleted positions: \(log.map(\.globalPosition))")
    let record = log[1]
    try lcCheck(record.streamID == "$deletions" && record.type == "$StreamDeleted" && record.version == 1, "the record: \(record)")
    let f = try fields(record)
    try lcCheck(
        f["streamId"] == .string("order-1") && f["lastVersion"] == .int(3) && f["deletedEvents"] == .int(3) && f["hard"] == .bool(false),
        "record data \(f)"
    )
    try lcCheck(try await a.headPosition() == 5, "head is the record")

    try await lcExpectError(.streamNotFound) { _ = try await l.deleteStream("order-1", expectedVersion: .any, hard: false, hook: nil) }
    try await lcExpectError(.streamNotFound) { _ = try await l.deleteStream("never", expectedVersion: .any, hard: false, hook: nil) }
    try await lcExpectError(.streamNotFound) { try await put(a, "order-1", 1, .streamExists) }
    try await lcExpectError(.concurrencyConflict) { try await put(a, "order-1", 1, .exact(3)) }
    // A snapshot of the deleted stream is refused: it would describe events that are gone and be
    // taken for the state of the stream's next life (versions 4 on).
    try await lcExpectError(.streamNotFound) {
        try await s.snapshots.saveSnapshot(Snapshot(streamID: "order-1", version: 3, state: Data("{}".utf8)))
    }
    try lcCheck(try await s.snapshots.loadSnapshot(streamID: "order-1") == nil, "no snapshot of the deleted stream")

    // The next append counts the stream as new, continues at 4, and deleted event IDs are free.
    let again = try await a.append(AppendRequest(
        streamID: "order-1", events: [EventData(id: first.events[0].id, type: "E", data: Data("{}".utf8))], expectedVersion: .noStream
    ), hook: nil)
    try lcCheck(!again.isReplay && again.fromVersion == 4 && again.fromPosition == 6, "append after soft delete: \(again)")
    let info = try await a.streamInfo("order-1")
    try lcCheck(info?.version == 4 && info?.eventCount == 1, "info after re-append: \(String(describing: info))")
    let second = try await l.deleteStream("order-1", expectedVersion: .exact(4), hard: false, hook: nil)
    try lcCheck(second.deletedEvents == 1 && second.lastVersion == 4 && second.position == 7, "second deletion \(second)")

    // Another tenant sees nothing of it.
    let other = try s.events.forTenant("lifecycle-other")
    try lcCheck(try await other.readAll(after: 0, filter: .all, limit: 10).isEmpty, "other tenant's log is empty")
}

private func hardDelete(_ s: ConformanceStorage) async throws {
    let a = s.events
    let l = try lifecycle(s)
    try await put(a, "t-1", 2)
    let d = try await l.deleteStream("t-1", expectedVersion: .any, hard: true, hook: nil)
    try lcCheck(d.hard && d.deletedEvents == 2 && d.lastVersion == 2 && d.position == 3, "hard deletion \(d)")
    try lcCheck(try await l.isTombstoned("t-1"), "tombstone")
    try await lcExpectError(.streamDeleted) { try await put(a, "t-1", 1) }
    try await lcExpectError(.streamDeleted) { try await put(a, "t-1", 1, .noStream) }
    try await lcExpectError(.streamDeleted) { _ = try await l.deleteStream("t-1", expectedVersion: .any, hard: false, hook: nil) }
    try await lcExpectError(.streamDeleted) { _ = try await l.deleteStream("t-1", expectedVersion: .any, hard: true, hook: nil) }
    try await lcExpectError(.streamDeleted) { try await l.setStreamRetention("t-1", StreamRetention(maxCount: 1)) }
    try await lcExpectError(.streamDeleted) {
        try await s.snapshots.saveSnapshot(Snapshot(streamID: "t-1", version: 2, state: Data("{}".utf8)))
    }
    let store = EventStore(adapter: a)
    try await lcExpectError(.streamDeleted) { _ = try await store.readStream("t-1", from: 1, limit: 10) }
    try await lcExpectError(.streamDeleted) { _ = try await store.streamInfo("t-1") }
    let record = try await a.readAll(after: 2, filter: .all, limit: 10)
    try lcCheck(record.count == 1 && (try fields(record[0]))["hard"] == .bool(true), "hard record \(record)")

    // A soft-deleted stream may be deleted hard; the tombstone is per tenant.
    try await put(a, "t-2", 1)
    _ = try await l.deleteStream("t-2", expectedVersion: .any, hard: false, hook: nil)
    let hard = try await l.deleteStream("t-2", expectedVersion: .any, hard: true, hook: nil)
    try lcCheck(hard.deletedEvents == 0 && hard.lastVersion == 1 && hard.hard, "hard after soft \(hard)")
    guard let other = try s.events.forTenant("lifecycle-other") as? any StreamLifecycleAdapter else { return }
    try lcCheck(try await other.isTombstoned("t-1") == false, "tombstones are per tenant")
    try await put(try s.events.forTenant("lifecycle-other"), "t-1", 1)
}

private func positionsNotReused(_ s: ConformanceStorage) async throws {
    let a = s.events
    let l = try lifecycle(s)
    try await put(a, "a-1", 2)
    let d = try await l.deleteStream("a-1", expectedVersion: .any, hard: false, hook: nil)
    try lcCheck(d.position == 3, "the record comes after the deleted head: \(d.position)")
    let next = try await put(a, "b-1", 1)
    try lcCheck(next.fromPosition == 4, "next position after a deletion: \(next.fromPosition)")
    let log = try await a.readAll(after: 0, filter: .all, limit: 10).map(\.globalPosition)
    try lcCheck(log == [3, 4], "log \(log)")
}

private func listing(_ s: ConformanceStorage) async throws {
    let a = s.events
    let l = try lifecycle(s)
    for id in ["b-1", "a-2", "ab-1", "a", "a-1", "é-1", "a+x", "gone-1", "a-1-x", "-x"] { try await put(a, id, id == "a-1" ? 3 : 1) }
    _ = try await l.deleteStream("gone-1", expectedVersion: .any, hard: false, hook: nil)

    var all: [String] = []
    var after: String?
    var pages = 0
    repeat {
        let page = try await l.listStreams(StreamListQuery(after: after, limit: 3))
        all += page.map(\.streamID)
        after = page.count == 3 ? page.last?.streamID : nil
        pages += 1
    } while after != nil && pages < 10
    let expected = ["$deletions", "-x", "a", "a+x", "a-1", "a-1-x", "a-2", "ab-1", "b-1", "é-1"]
    try lcCheck(all == expected, "listing \(all)")

    let category = try await l.listStreams(StreamListQuery(category: "a", limit: 100)).map(\.streamID)
    try lcCheck(category == ["a", "a-1", "a-1-x", "a-2"], "category a: \(category)")
    // A category is the part before the first `-`: it never holds one, so such a filter matches
    // nothing (not the streams whose ID starts with it); the empty category is `-…`'s.
    for c in ["a-1", "-", "a-"] {
        let none = try await l.listStreams(StreamListQuery(category: c, limit: 100)).map(\.streamID)
        try lcCheck(none.isEmpty, "category \(c): \(none)")
    }
    let empty = try await l.listStreams(StreamListQuery(category: "", limit: 100)).map(\.streamID)
    try lcCheck(empty == ["-x"], "the empty category: \(empty)")
    let prefix = try await l.listStreams(StreamListQuery(prefix: "a-", limit: 100)).map(\.streamID)
    try lcCheck(prefix == ["a-1", "a-1-x", "a-2"], "prefix a-: \(prefix)")
    let prefixAfter = try await l.listStreams(StreamListQuery(prefix: "a", after: "a-1", limit: 100)).map(\.streamID)
    try lcCheck(prefixAfter == ["a-1-x", "a-2", "ab-1"], "prefix a after a-1: \(prefixAfter)")
    let one = try await l.listStreams(StreamListQuery(prefix: "a-1", limit: 1))
    try lcCheck(one.count == 1 && one[0].version == 3 && one[0].eventCount == 3 && one[0].category == "a", "info in a listing: \(one)")
    try lcCheck(try await l.listStreams(StreamListQuery(category: "zz", limit: 10)).isEmpty, "unknown category")

    guard let other = try s.events.forTenant("lifecycle-other") as? any StreamLifecycleAdapter else { return }
    try lcCheck(try await other.listStreams(StreamListQuery(limit: 10)).isEmpty, "another tenant lists nothing")
}

private func retention(_ s: ConformanceStorage) async throws {
    let a = s.events
    let l = try lifecycle(s)
    let store = EventStore(adapter: a)
    try lcCheck(try await l.streamRetention("r-1") == nil, "no rules stored")
    // Before the first event.
    try await l.setStreamRetention("r-1", StreamRetention(maxCount: 2))
    try lcCheck(try await l.streamRetention("r-1") == StreamRetention(maxCount: 2), "rules stored")
    try await put(a, "r-1", 5)
    try await put(a, "r-2", 1)  // the tenant's newest event is elsewhere

    let forward = try await store.readStream("r-1", from: 1, limit: 10).map(\.version)
    try lcCheck(forward == [4, 5], "maxCount at read time: \(forward)")
    let backward = try await store.readStream("r-1", from: -1, limit: 10, direction: .backward).map(\.version)
    try lcCheck(backward == [5, 4], "backward: \(backward)")
    let info = try await store.streamInfo("r-1")
    try lcCheck(info?.version == 5 && info?.eventCount == 2, "info with rules: \(String(describing: info))")

    try await l.setStreamRetention("r-1", StreamRetention(maxCount: 3, truncateBefore: 5))
    let both = try await store.readStream("r-1", from: 1, limit: 10).map(\.version)
    try lcCheck(both == [5], "maxCount and truncateBefore: \(both)")

    // The scavenger removes what the rules exclude, physically.
    let removed = try await store.scavenge(batchSize: 3)
    try lcCheck(removed == 4, "scavenged \(removed)")
    let raw = try await a.readStream("r-1", from: 1, limit: 10, direction: .forward).map(\.version)
    try lcCheck(raw == [5], "stored after scavenging: \(raw)")
    let log = try await a.readAll(after: 0, filter: .all, limit: 10).map(\.globalPosition)
    try lcCheck(log == [5, 6], "global log after scavenging: \(log)")
    try lcCheck(try await store.scavenge() == 0, "a second pass finds nothing")

    // maxAge, and the tenant's newest event stays.
    try await l.setStreamRetention("r-2", StreamRetention(maxAgeSeconds: 60))
    let later = Date().addingTimeInterval(3600)
    try lcCheck(try await l.scavengeBatch(now: later, limit: 100) == 0, "the newest event of the tenant is kept")
    try await put(a, "r-3", 1)
    try lcCheck(try await l.scavengeBatch(now: later, limit: 100) == 1, "then it goes")

    try await l.setStreamRetention("r-1", StreamRetention())
    try lcCheck(try await l.streamRetention("r-1") == nil, "empty rules remove them")
    guard let other = try s.events.forTenant("lifecycle-other") as? any StreamLifecycleAdapter else { return }
    try lcCheck(try await other.streamRetention("r-2") == nil, "rules are per tenant")
}

private func importedDeletion(_ s: ConformanceStorage) async throws {
    let a = s.events
    let l = try lifecycle(s)
    try await l.applyImportedDeletion(streamID: "imp-1", lastVersion: 7, hard: false)
    try lcCheck(try await a.streamInfo("imp-1") == nil, "soft-deleted import is not readable")
    let r = try await put(a, "imp-1", 1, .noStream)
    try lcCheck(r.fromVersion == 8, "continues after the imported deletion: \(r.fromVersion)")
    try await l.applyImportedDeletion(streamID: "imp-2", lastVersion: 3, hard: true)
    try lcCheck(try await l.isTombstoned("imp-2"), "imported tombstone")
    try await lcExpectError(.streamDeleted) { try await put(a, "imp-2", 1) }
    // Events of the stream stored before the record are removed, as the deletion removed them.
    let again0 = try await put(a, "imp-3", 3)
    try await l.applyImportedDeletion(streamID: "imp-3", lastVersion: 3, hard: false)
    try lcCheck(try await a.streamInfo("imp-3") == nil, "an imported deletion leaves the stream deleted")
    try lcCheck(try await a.readStream("imp-3", from: 1, limit: 10, direction: .forward).isEmpty, "an imported deletion removes the events before it")
    try lcCheck(
        try await a.readAll(after: again0.fromPosition - 1, filter: .all, limit: 10).allSatisfy { $0.streamID != "imp-3" },
        "an imported deletion removes the events before it from the log")
    let again = try await put(a, "imp-3", 1, .noStream)
    try lcCheck(again.fromVersion == 4, "continues after the imported deletion: \(again.fromVersion)")
}

/// ``StreamLifecycleAdapter/readStreamForRetention(_:from:limit:direction:)`` and
/// ``StreamLifecycleAdapter/streamInfoForRetention(_:)`` (one storage call where the adapter can)
/// agree with the calls they stand for, on every kind of stream.
private func readsForRetention(_ s: ConformanceStorage) async throws {
    let a = s.events
    let l = try lifecycle(s)
    try await put(a, "plain-1", 3)
    try await put(a, "ruled-1", 4)
    try await l.setStreamRetention("ruled-1", StreamRetention(maxCount: 2))
    try await put(a, "soft-1", 2)
    _ = try await l.deleteStream("soft-1", expectedVersion: .any, hard: false, hook: nil)
    try await put(a, "hard-1", 2)
    _ = try await l.deleteStream("hard-1", expectedVersion: .any, hard: true, hook: nil)
    var checked = 0
    for stream in ["plain-1", "ruled-1", "soft-1", "hard-1", "missing-1"] {
        let rules = try await l.streamRetention(stream).flatMap { $0.isEmpty ? nil : $0 }
        let tombstoned = try await l.isTombstoned(stream)
        for (from, limit, direction) in [(Int64(1), 10, ReadDirection.forward), (2, 1, .forward), (-1, 2, .backward), (1, 0, .forward)] {
            let read = try await l.readStreamForRetention(stream, from: from, limit: limit, direction: direction)
            let expected: RetentionAwareRead
            if let rules {
                expected = RetentionAwareRead(retention: rules, events: [], tombstoned: false)
            } else {
                let page = try await a.readStream(stream, from: from, limit: limit, direction: direction)
                expected = RetentionAwareRead(retention: nil, events: page, tombstoned: page.isEmpty && tombstoned)
            }
            try lcCheck(read == expected, "\(stream) from \(from) limit \(limit) \(direction): \(read), expected \(expected)")
            let withInfo = try await l.readStreamWithInfo(stream, from: from, limit: limit, direction: direction)
            let info = try await l.streamInfoForRetention(stream)
            let page = info.info != nil && info.retention == nil ? try await a.readStream(stream, from: from, limit: limit, direction: direction) : []
            let expectedPage = RetentionAwarePage(info: info, events: page)
            try lcCheck(withInfo == expectedPage, "\(stream) from \(from) limit \(limit) \(direction) with info: \(withInfo), expected \(expectedPage)")
            checked += 1
        }
        let info = try await a.streamInfo(stream)
        let found = try await l.streamInfoForRetention(stream)
        let expected = RetentionAwareInfo(info: info, retention: info == nil ? nil : rules, tombstoned: info == nil && tombstoned)
        try lcCheck(found == expected, "\(stream): \(found), expected \(expected)")
    }
    try lcCheck(checked == 20, "every case read")
    // What the cases above rely on, so that none of them checks nothing.
    try lcCheck(try await l.readStreamForRetention("plain-1", from: 1, limit: 10, direction: .forward).events.count == 3, "plain page")
    try lcCheck(try await l.readStreamForRetention("ruled-1", from: 1, limit: 10, direction: .forward).retention == StreamRetention(maxCount: 2), "rules")
    try lcCheck(try await l.readStreamForRetention("hard-1", from: 1, limit: 10, direction: .forward).tombstoned, "tombstone")
    try lcCheck(try await l.streamInfoForRetention("ruled-1").retention == StreamRetention(maxCount: 2), "info with rules")
    try lcCheck(try await l.streamInfoForRetention("hard-1").tombstoned, "info's tombstone")
    try lcCheck(try await l.streamInfoForRetention("soft-1") == RetentionAwareInfo(info: nil, retention: nil, tombstoned: false), "soft-deleted")
    // The snapshot with the tombstone, as the separate reads answer them; a deleted stream's
    // snapshot write is refused in the write (`410` / `404`).
    try await s.snapshots.saveSnapshot(Snapshot(streamID: "plain-1", version: 3, state: Data(#"{"p":1}"#.utf8)))
    try await s.snapshots.saveSnapshot(Snapshot(streamID: "never-1", version: 9, state: Data("{}".utf8)))
    for stream in ["plain-1", "ruled-1", "soft-1", "hard-1", "missing-1", "never-1"] {
        let found = try await l.snapshotUnlessTombstoned(streamID: stream)
        let tombstoned = try await l.isTombstoned(stream)
        let snapshot = tombstoned ? nil : try await s.snapshots.loadSnapshot(streamID: stream)
        try lcCheck(found.tombstoned == tombstoned && found.snapshot == snapshot, "\(stream)'s snapshot: \(found), expected \(String(describing: snapshot)), \(tombstoned)")
    }
    try lcCheck(try await l.snapshotUnlessTombstoned(streamID: "plain-1").snapshot?.state == Data(#"{"p":1}"#.utf8), "a stream's snapshot")
    try lcCheck(try await l.snapshotUnlessTombstoned(streamID: "never-1").snapshot?.version == 9, "a snapshot of a stream never written")
    try lcCheck(try await l.snapshotUnlessTombstoned(streamID: "hard-1").tombstoned, "the snapshot read's tombstone")
    try await lcExpectError(.streamDeleted) { _ = try await s.snapshots.storeSnapshot(Snapshot(streamID: "hard-1", version: 5, state: Data("{}".utf8))) }
    try await lcExpectError(.streamNotFound) { _ = try await s.snapshots.storeSnapshot(Snapshot(streamID: "soft-1", version: 5, state: Data("{}".utf8))) }
    try lcCheck(try await s.snapshots.loadSnapshot(streamID: "hard-1") == nil, "no snapshot stored for a tombstoned stream")
    let plain = try await l.readStreamWithInfo("plain-1", from: 2, limit: 10, direction: .forward)
    try lcCheck(plain.events.map(\.version) == [2, 3] && plain.info.info?.version == 3 && plain.info.info?.eventCount == 3, "page with info: \(plain)")
    try lcCheck(try await l.readStreamWithInfo("ruled-1", from: 1, limit: 10, direction: .forward).info.retention == StreamRetention(maxCount: 2), "page's rules")
    try lcCheck(try await l.readStreamWithInfo("hard-1", from: 1, limit: 10, direction: .forward).info.tombstoned, "page's tombstone")
}
