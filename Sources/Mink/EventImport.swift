import Foundation

// Moving a tenant's log between storages (HTTP-API.md section 9: export and import).
//
// An import copies events *as they are*: every id, stream, version, type, data, metadata,
// timestamp and global position is kept, so that positions held by subscribers and projections
// stay valid in the new storage. It is all or nothing, into a tenant without events.

extension MinkError.Code {
    /// An import into a tenant that already has events (`409 tenant_not_empty`).
    public static let tenantNotEmpty = MinkError.Code(rawValue: "tenant_not_empty")
    /// An import whose input breaks a rule: a malformed line, positions not increasing, versions
    /// not consecutive (`400`; the message names the line).
    public static let invalidImport = MinkError.Code(rawValue: "invalid_import")
}

/// The events an import reads, batch by batch, in global order.
///
/// The adapter calls ``nextBatch()`` synchronously on its own storage thread, inside the import's
/// one transaction, so that the whole input is never held in memory; an error thrown by the
/// source rolls the import back.
public protocol EventImportSource: AnyObject, Sendable {
    /// The next events (in global order, already checked by ``ImportValidator``), or `nil` at the
    /// end of the input.
    /// - Throws: `MinkError` (`.invalidImport`, `.validationFailed`) for bad input.
    func nextBatch() throws -> [Event]?
}

/// A line of an import's input that breaks a rule: nothing is imported (`400`, naming the line).
public struct ImportLineError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The line, counting from 1.
    public var line: Int
    /// The API error code: `invalid_json` for a line that is not JSON, else `bad_request`.
    public var code: String
    /// What is wrong, without the line number.
    public var message: String

    /// Creates the error.
    public init(line: Int, code: String, message: String) {
        self.line = line
        self.code = code
        self.message = message
    }

    /// `line N: message`.
    public var description: String { "line \(line): \(message)" }
}

/// What an import wrote (`{"events": N, "streams": M, "head": P}`).
public struct ImportSummary: Sendable, Hashable {
    /// The number of events imported.
    public var events: Int64
    /// The number of distinct streams they belong to.
    public var streams: Int64
    /// The global position of the last imported event (0 for an empty input).
    public var head: UInt64

    /// Creates a summary.
    public init(events: Int64, streams: Int64, head: UInt64) {
        self.events = events
        self.streams = streams
        self.head = head
    }
}

/// Storage that can take an import (every adapter of this project).
public protocol EventImporting: Sendable {
    /// Writes every event of `source` into this (tenant-scoped) storage in one transaction.
    ///
    /// Holds the tenant's writer for the whole import, so an append of the same tenant either
    /// committed before (the import then fails with `.tenantNotEmpty`) or waits until the import
    /// committed and continues after its head.
    /// - Parameter hook: run on each batch inside the import's transaction after its rows were
    ///   written (the store's inline projections, as for an append); its failure rolls the import
    ///   back.
    /// - Throws: `.tenantNotEmpty` when the tenant has events; what the source or the hook threw;
    ///   storage errors. Nothing is written in any of these cases.
    func importEvents(from source: any EventImportSource, hook: AppendTransactionHook?) async throws -> ImportSummary
}

/// Checks the order rules of an import, event by event: global positions strictly increasing
/// (and ≥ 1), versions consecutive within each stream (a stream's first imported version may be
/// above 1: earlier events may have been deleted or expired by retention).
///
/// Keeps one entry per stream (its last version): memory grows with the number of streams, not
/// with the number of events.
public struct ImportValidator: Sendable {
    private var lastPosition: UInt64 = 0
    private var versions: [String: Int64] = [:]
    /// Streams hard-deleted by an earlier line: nothing of theirs may follow.
    private var tombstones: Set<String> = []
    /// Streams soft-deleted by an earlier line and not written since: their next event must be
    /// above the deletion's `lastVersion` (not exactly the next: retention may have removed the
    /// first events written after the deletion, and the export then resumes later).
    private var floors: [String: Int64] = [:]
    /// Events accepted so far.
    public private(set) var events: Int64 = 0

    /// Creates a validator for an empty tenant.
    public init() {}

    /// The number of distinct streams seen so far.
    public var streams: Int64 { Int64(versions.count) }
    /// The position of the last accepted event.
    public var head: UInt64 { lastPosition }

    /// The largest position or version an import may carry: 2^53 − 1, the largest integer every
    /// JSON reader (JavaScript's included) reads exactly; appends after it then stay far from
    /// 64-bit overflow.
    public static let maxNumber: UInt64 = (1 << 53) - 1
    /// The longest event type, in bytes (as an append's).
    public static let maxTypeBytes = 256

    /// Accepts `event` or throws an ``ImportLineError`` naming `line`.
    public mutating func accept(_ event: Event, line: Int) throws {
        func fail(_ what: String) -> ImportLineError {
            ImportLineError(line: line, code: "bad_request", message: what)
        }
        if let problem = StreamID.problem(event.streamID) { throw fail("streamId: \(problem)") }
        if event.type.isEmpty { throw fail("type: must not be empty") }
        if let problem = StreamID.typeProblem(event.type) { throw fail("type: \(problem)") }
        // What an append could not have written, an import does not write either: the one system
        // stream is `$deletions`, of `$StreamDeleted` records only, and no other event has a `$`
        // type; a type is at most 256 bytes.
        if event.type.utf8.count > Self.maxTypeBytes { throw fail("type: longer than \(Self.maxTypeBytes) bytes") }
        if event.streamID == ImportedDeletion.stream {
            if event.type != ImportedDeletion.type {
                throw fail("stream \(ImportedDeletion.stream) holds \(ImportedDeletion.type) records only, found type \(event.type)")
            }
        } else if StreamID.isReserved(event.streamID) {
            throw fail("streamId: IDs starting with $ are reserved; the only system stream is \(ImportedDeletion.stream)")
        } else if StreamID.isReserved(event.type) {
            throw fail("type: types starting with $ are reserved for the server's records")
        }
        if tombstones.contains(event.streamID) {
            throw fail("stream \(event.streamID) was hard-deleted by an earlier line: no event of it may follow")
        }
        guard event.globalPosition <= Self.maxNumber else {
            throw fail("globalPosition \(event.globalPosition) is over the largest allowed, \(Self.maxNumber) (2^53 − 1)")
        }
        guard event.version <= Int64(Self.maxNumber) else {
            throw fail("version \(event.version) is over the largest allowed, \(Self.maxNumber) (2^53 − 1)")
        }
        guard event.globalPosition > lastPosition else {
            throw fail("globalPosition \(event.globalPosition) is not greater than the previous line's \(lastPosition)")
        }
        guard event.version >= 1 else { throw fail("version must be ≥ 1, found \(event.version)") }
        if let floor = floors.removeValue(forKey: event.streamID) {
            guard event.version > floor else {
                throw fail("version \(event.version) of stream \(event.streamID) is not above its deletion's lastVersion \(floor)")
            }
        } else if let previous = versions[event.streamID], event.version != previous + 1 {
            throw fail("version \(event.version) of stream \(event.streamID) does not follow \(previous)")
        }
        // A deletion record's own fields are checked here too, with the line.
        let deletion: ImportedDeletion?
        do { deletion = try ImportedDeletion.of(event) } catch let e as MinkError { throw fail(e.message) }
        if let deletion {
            let target = deletion.streamID
            if let problem = StreamID.problem(target) { throw fail("data.streamId of the \(ImportedDeletion.type) record: \(problem)") }
            if StreamID.isReserved(target) { throw fail("data.streamId of the \(ImportedDeletion.type) record: a system stream cannot be deleted") }
            if tombstones.contains(target) { throw fail("stream \(target) was already hard-deleted by an earlier line") }
            // The deleted stream's versions go on after `lastVersion`, which cannot be below what
            // was imported of it (its events before the deletion may be gone: not below).
            if let previous = versions[target], deletion.lastVersion < previous {
                throw fail("lastVersion \(deletion.lastVersion) of the deletion of \(target) is below its imported version \(previous)")
            }
            if let floor = floors[target], deletion.lastVersion < floor {
                throw fail("lastVersion \(deletion.lastVersion) of the deletion of \(target) is below its earlier deletion's \(floor)")
            }
            floors[target] = deletion.lastVersion
            if deletion.hard { tombstones.insert(target) }
        }
        versions[event.streamID] = event.version
        lastPosition = event.globalPosition
        events += 1
    }

    /// The summary of what was accepted.
    public var summary: ImportSummary { ImportSummary(events: events, streams: streams, head: lastPosition) }
}

/// The effect of a `$StreamDeleted` record of the `$deletions` stream on an import.
///
/// The record itself is imported verbatim like any event; what it means for the deleted
/// stream (its version counter is kept past the deletion so that a version is never reused;
/// a hard delete leaves a tombstone) is applied by the adapters through this description.
public struct ImportedDeletion: Sendable, Hashable {
    /// The system stream of deletion records.
    public static let stream = "$deletions"
    /// The type of a deletion record.
    public static let type = "$StreamDeleted"

    /// The deleted stream.
    public var streamID: String
    /// Its last version when it was deleted.
    public var lastVersion: Int64
    /// Whether it was a hard delete (a tombstone).
    public var hard: Bool

    /// Describes the deletion of `streamID` at `lastVersion`.
    public init(streamID: String, lastVersion: Int64, hard: Bool) {
        self.streamID = streamID
        self.lastVersion = lastVersion
        self.hard = hard
    }

    /// The deletion an imported event records, or `nil` when it is not a deletion record.
    /// - Throws: `.invalidImport` for a deletion record whose data lacks `streamId` or
    ///   `lastVersion`.
    public static func of(_ event: Event) throws -> ImportedDeletion? {
        guard event.streamID == stream, event.type == type else { return nil }
        guard case .object(let fields)? = try? JSONValue(json: event.data),
              case .string(let streamID)? = fields["streamId"],
              let lastVersion = fields["lastVersion"]?.int64Value
        else {
            throw MinkError(
                .invalidImport,
                "the \(type) record at position \(event.globalPosition) lacks streamId or an integer lastVersion"
            )
        }
        // As an imported event's version: the next append to the stream continues after it
        // (2^63 − 1 made that append overflow and crash the process, again after each restart).
        guard lastVersion >= 0, UInt64(lastVersion) <= ImportValidator.maxNumber else {
            throw MinkError(
                .invalidImport,
                "the \(type) record at position \(event.globalPosition): lastVersion \(lastVersion) is outside 0…\(ImportValidator.maxNumber) (2^53 − 1)"
            )
        }
        // Written by every deletion (``StreamDeletion/data(streamID:lastVersion:deletedEvents:hard:)``):
        // a record without it, or with another type, is not one minkd wrote.
        guard case .bool(let hard)? = fields["hard"] else {
            throw MinkError(.invalidImport, "the \(type) record at position \(event.globalPosition) lacks a boolean hard")
        }
        return ImportedDeletion(streamID: streamID, lastVersion: lastVersion, hard: hard)
    }
}

extension EventStore {
    /// Imports a tenant's log (HTTP-API.md section 9) into this store's tenant, which must have
    /// no events; then wakes the tenant's subscribers and projections.
    /// - Throws: `.tenantNotEmpty`, `.invalidImport`, `.adapterNotSupported`, storage errors;
    ///   nothing is imported in any of these cases.
    public func importEvents(from source: any EventImportSource) async throws -> ImportSummary {
        guard let importer = adapter as? any EventImporting else {
            throw MinkError(.adapterNotSupported, "this storage cannot import events")
        }
        // Inline projections see imported events as they see appended ones: in the same
        // transaction, batch by batch, so their read models match the log after the import.
        let inline = inlineProjections
        var hook: AppendTransactionHook?
        if !inline.isEmpty {
            hook = { (events: [Event], tx: any ReadModelTransaction) throws in
                for p in inline {
                    let handled = p.handledEvents.isEmpty ? events : events.filter { p.handles($0.type) }
                    if !handled.isEmpty { try p.applyAll(handled, in: tx) }
                }
            }
        }
        // Held while an inline projection of the store is rebuilt, as appends are.
        let summary = try await inlineGate.pass { try await importer.importEvents(from: source, hook: hook) }
        if summary.events > 0 { await hub.notifyCommitted() }
        return summary
    }
}
