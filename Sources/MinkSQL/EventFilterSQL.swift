import Mink

/// Renders an `EventFilter` as SQL conditions over an events table.
///
/// Categories are always compared literally (`%` and `_` are not wildcards): either against a
/// category column, or as a stream-ID prefix with every `LIKE` metacharacter escaped.
public struct EventFilterSQL: Sendable {
    /// How the category of an event's stream is found.
    public enum CategoryMatch: Sendable, Hashable {
        /// A column holding `StreamID.category(of: stream_id)`: `category = ?`.
        case column(SQLIdentifier)
        /// The stream-ID column itself: `(stream_id = ? OR stream_id LIKE ? ESCAPE '\')` with the
        /// category escaped and followed by `-%`. Needs a case-sensitive `LIKE` (PostgreSQL's;
        /// SQLite's only with `PRAGMA case_sensitive_like = ON`).
        case streamIDPrefix
    }

    /// How categories are matched.
    public var category: CategoryMatch
    /// The event type column.
    public var typeColumn: SQLIdentifier
    /// The stream ID column.
    public var streamColumn: SQLIdentifier

    /// Creates a renderer; the defaults are a `category` column, `type` and `stream_id`.
    public init(category: CategoryMatch = .column("category"), typeColumn: SQLIdentifier = "type", streamColumn: SQLIdentifier = "stream_id") {
        self.category = category
        self.typeColumn = typeColumn
        self.streamColumn = streamColumn
    }

    /// The conditions of `filter`, to be joined with `AND` (empty: every event).
    public func conditions(_ filter: EventFilter, into b: inout SQLBuilder) -> [String] {
        var parts: [String] = []
        if let category = filter.category {
            switch self.category {
            case .column(let column):
                parts.append("\(column.quoted) = \(b.bind(.text(category), postgresCast: "text"))")
            case .streamIDPrefix:
                // A category never contains `-`: such a filter matches nothing (as in `EventFilter.matches`).
                if category.contains("-") {
                    parts.append("FALSE")
                } else {
                    let exact = b.bind(.text(category), postgresCast: "text")
                    let prefix = b.bind(.text(SQLPattern.escapeLike(category) + "-%"), postgresCast: "text")
                    parts.append("(\(streamColumn.quoted) = \(exact) OR \(streamColumn.quoted) LIKE \(prefix) ESCAPE '\\')")
                }
            }
        }
        if !filter.eventTypes.isEmpty {
            let list = filter.eventTypes.map { b.bind(.text($0), postgresCast: "text") }.joined(separator: ", ")
            parts.append("\(typeColumn.quoted) IN (\(list))")
        }
        if !filter.streamIDs.isEmpty {
            let list = filter.streamIDs.map { b.bind(.text($0), postgresCast: "text") }.joined(separator: ", ")
            parts.append("\(streamColumn.quoted) IN (\(list))")
        }
        return parts
    }
}
