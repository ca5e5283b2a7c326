import Logging
import Mink
import Synchronization

/// Turns the per-request storage failures of an outage into two log lines: one `error` with
/// the underlying cause (libpq's message, SQLite's extended code) when the first request or
/// readiness probe fails, and one `notice` when storage answers again, with how long the outage
/// lasted and how many requests failed in it.
///
/// Why: during an outage every request fails; an error line per request drowns the cause in
/// thousands of copies (and the 503 access lines, at `warning`, already count them), while no
/// line at all — what the server did before — leaves the operator with nothing above `info`.
///
/// Each line carries the `trace_id` and `span_id` of the request whose failure started the
/// outage (or whose success ended it) — the values of that request's access line and
/// `traceparent` — so the line leads to the request, and the request to the caller's trace. A
/// line caused by no request (the readiness check's write probe, which writes on its own
/// schedule) has none.
final class StorageOutageLog: Sendable {
    /// The outage's state; `down` carries what the `notice` at its end reports.
    private enum State {
        case healthy
        /// `writes`: writes failed in it — then only a write that succeeds ends it (a storage
        /// refusing writes still answers reads: each read logged "available again" and the next
        /// failed write a new outage, a pair of lines per write; a black-box audit, 2026-12-07).
        case down(since: ContinuousClock.Instant, cause: String, failures: Int, writes: Bool)
    }

    private let state = Mutex<State>(.healthy)
    /// Mirrors `state` for the success path, which runs on every request: one relaxed load
    /// while healthy, the lock only while an outage lasts.
    private let isDown = Atomic<Bool>(false)
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    /// Whether an outage is in progress.
    var inOutage: Bool { isDown.load(ordering: .relaxed) }

    /// Records a storage failure; logs the `error` line if it starts an outage.
    /// - Parameters:
    ///   - cause: the underlying error, as `String(reflecting:)` shows it.
    ///   - trace: the failing request's server span (by default the calling task's), or `nil`
    ///     for a failure no request made.
    ///   - write: the failed call was a write.
    func failed(cause: String, write: Bool = false, trace: TraceContext? = TraceContext.current) {
        let started = state.withLock { state -> Bool in
            switch state {
            case .healthy:
                state = .down(since: .now, cause: cause, failures: 1, writes: write)
                isDown.store(true, ordering: .relaxed)
                return true
            case .down(let since, let first, let failures, let writes):
                state = .down(since: since, cause: first, failures: failures + 1, writes: writes || write)
                return false
            }
        }
        if started {
            var metadata: Logger.Metadata = ["cause": "\(cause)"]
            Self.add(trace, to: &metadata)
            logger.error("storage unavailable: requests answer 503 until it is back", metadata: metadata)
        }
    }

    /// Records a storage call that succeeded; logs the `notice` line if it ends an outage.
    /// - Parameter trace: the succeeding request's server span (by default the calling task's).
    /// - Parameter write: the call was a write (only that ends an outage in which writes failed).
    func succeeded(write: Bool = false, trace: TraceContext? = TraceContext.current) {
        guard isDown.load(ordering: .relaxed) else { return }
        let ended = state.withLock { state -> (Duration, String, Int)? in
            guard case .down(let since, let cause, let failures, let writes) = state, write || !writes else { return nil }
            state = .healthy
            isDown.store(false, ordering: .relaxed)
            return (ContinuousClock.now - since, cause, failures)
        }
        if let (duration, cause, failures) = ended {
            var metadata: Logger.Metadata = [
                "outage_seconds": "\(duration.components.seconds)", "failed_requests": "\(failures)", "cause": "\(cause)",
            ]
            Self.add(trace, to: &metadata)
            logger.notice("storage available again", metadata: metadata)
        }
    }

    /// The request's IDs, under the access line's keys.
    private static func add(_ trace: TraceContext?, to metadata: inout Logger.Metadata) {
        guard let trace else { return }
        metadata["trace_id"] = "\(trace.traceID)"
        metadata["span_id"] = "\(trace.spanIDHex)"
    }
}
