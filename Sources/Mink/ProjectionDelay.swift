import Foundation
import Metrics

/// Records how long events take to show in a projection's read model: for each event a batch
/// applied, the time from its append (its `timestamp`, taken by the appending process as its
/// transaction writes it) to the commit of that batch — from then on, a read of the read model
/// shows the event. `mink_projection_delay_seconds{projection}`, a timer (a histogram in
/// Prometheus).
///
/// What it includes: the append's own commit, the wake-up of the projection, its batch's
/// transaction — and any backlog: after a restart, a pause or a fault, the events caught up
/// with count how long they waited. A rebuild's copy does not record (its events show in the
/// serving copy already). Across processes the two clocks differ by their skew (a negative delay
/// counts as 0).
struct ProjectionDelay: Sendable {
    static let label = "mink_projection_delay_seconds"
    private let timer: Metrics.Timer

    init(projection: String, factory: any MetricsFactory) {
        timer = Metrics.Timer(label: Self.label, dimensions: [("projection", projection)], factory: factory)
    }

    /// Records the events of a batch that has committed.
    func record(_ events: some Collection<Event>, committedAt now: Date = Date()) {
        for e in events {
            let seconds = now.timeIntervalSince(e.timestamp)
            timer.recordNanoseconds(seconds > 0 ? Int64(seconds * 1e9) : 0)
        }
    }
}
