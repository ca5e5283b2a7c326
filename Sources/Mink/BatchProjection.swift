import Foundation

/// An inline projection that folds a whole batch of events in one pass: it learns which
/// documents the batch touches before any write, loads them with one
/// ``ReadModelTransaction/documents(_:ids:)``, applies every event to them in memory, and writes
/// each changed document once (``ReadModelTransaction/putDocuments(_:_:)``,
/// ``ReadModelTransaction/deleteDocuments(_:ids:)``).
///
/// The engine uses it wherever it applies several events in one transaction (an async batch, a
/// rebuild); the result must be exactly that of ``InlineProjection/apply(_:in:)`` called for each
/// event in turn. Declared (config-file) projections implement it.
public protocol BatchInlineProjection: InlineProjection {
    /// Applies `events` (all handled, in log order) through `transaction`.
    /// - Throws: the error of the first event that cannot be applied — a `MinkError` whose
    ///   `position` names that event when it is the event's fault; the caller rolls the whole
    ///   transaction back, so nothing of the batch is applied.
    func apply(batch events: [Event], in transaction: any ReadModelTransaction) throws
}

extension InlineProjection {
    /// Applies events in log order: in one fold when the projection is a
    /// ``BatchInlineProjection``, else one by one.
    func applyAll(_ events: [Event], in transaction: any ReadModelTransaction) throws {
        if let batch = self as? any BatchInlineProjection {
            try batch.apply(batch: events, in: transaction)
        } else {
            for e in events { try apply(e, in: transaction) }
        }
    }
}

extension ReadModelTransaction {
    /// One ``document(_:id:)`` per ID (storage without a one-query form).
    public func documents(_ model: String, ids: [String]) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for id in ids where out[id] == nil {
            if let json = try document(model, id: id) { out[id] = json }
        }
        return out
    }

    /// One ``putDocument(_:id:json:)`` per document.
    public func putDocuments(_ model: String, _ documents: [(id: String, json: Data)]) throws {
        for d in documents { try putDocument(model, id: d.id, json: d.json) }
    }

    /// One ``deleteDocument(_:id:)`` per ID.
    public func deleteDocuments(_ model: String, ids: [String]) throws {
        for id in ids { try deleteDocument(model, id: id) }
    }
}

/// The documents of one batch write, each ID once (the last write of an ID wins), in first-seen
/// order — what a multi-row statement needs (PostgreSQL refuses to upsert one row twice in one
/// statement).
public enum DocumentBatch {
    /// `documents` with each ID kept once, at its first place, with its last value.
    public static func unique(_ documents: [(id: String, json: Data)]) -> [(id: String, json: Data)] {
        var index: [String: Int] = [:]
        var out: [(id: String, json: Data)] = []
        out.reserveCapacity(documents.count)
        for d in documents {
            if let i = index[d.id] {
                out[i].json = d.json
            } else {
                index[d.id] = out.count
                out.append(d)
            }
        }
        return out
    }
}
