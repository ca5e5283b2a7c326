import CoreMetrics
import Prometheus

/// A swift-metrics factory over the server's Prometheus registry that gives the library's
/// metrics (`mink_*`, recorded by `Middleware.metrics`) their `# HELP` text, so the exposition
/// passes `promtool check metrics`. Metrics it does not know go to the plain factory.
struct DescribedMetricsFactory: MetricsFactory {
    let base: PrometheusMetricsFactory

    /// Help texts of the library's metrics, by name.
    static let help: [String: String] = [
        "mink_operations_total": "Event store operations by operation and outcome.",
        "mink_operation_duration_seconds": "Event store (storage) latency by operation.",
        "mink_events_appended_total": "Events appended (retries of committed appends excluded).",
        "mink_projection_delay_seconds":
            "Time from an event's append to the commit of the projection batch that applied it, by projection.",
    ]

    /// Histogram buckets of the library's timers that are not latencies of one call: a
    /// projection's delay is a few milliseconds when it keeps up (the buckets resolve that, for
    /// a p99 against a few-millisecond objective) and minutes when it catches up.
    static let buckets: [String: [Duration]] = [
        "mink_projection_delay_seconds": [
            .microseconds(500), .milliseconds(1), .milliseconds(1.5), .milliseconds(2), .milliseconds(2.5), .milliseconds(3),
            .milliseconds(4), .milliseconds(5), .milliseconds(7.5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5), .seconds(30), .seconds(60),
            .seconds(300),
        ]
    ]

    private func descriptor(_ label: String) -> MetricNameDescriptor? {
        Self.help[label].map { MetricNameDescriptor(metricName: label, unitName: "", helpText: $0) }
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        guard let d = descriptor(label) else { return base.makeCounter(label: label, dimensions: dimensions) }
        return base.registry.makeCounter(descriptor: d, labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        base.makeFloatingPointCounter(label: label, dimensions: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        base.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        base.makeMeter(label: label, dimensions: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        guard let d = descriptor(label) else { return base.makeTimer(label: label, dimensions: dimensions) }
        return base.registry.makeDurationHistogram(
            descriptor: d, labels: dimensions, buckets: Self.buckets[label] ?? base.defaultDurationHistogramBuckets)
    }

    func destroyCounter(_ handler: any CounterHandler) { base.destroyCounter(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { base.destroyFloatingPointCounter(handler) }
    func destroyRecorder(_ handler: any RecorderHandler) { base.destroyRecorder(handler) }
    func destroyMeter(_ handler: any MeterHandler) { base.destroyMeter(handler) }
    func destroyTimer(_ handler: any TimerHandler) { base.destroyTimer(handler) }
}

extension ServerMetrics {
    /// The gauges of projections: `minkd_projection_checkpoint`, `_lag` (events behind the head)
    /// and `_faulted` (tenants in which the projection is faulted), summed over tenants.
    func projectionGauge(_ kind: String, _ projection: String) -> Prometheus.Gauge {
        let help: String
        switch kind {
        case "checkpoint": help = "Projection checkpoints (global positions), summed over tenants."
        case "lag": help = "Events between projection checkpoints and the log head, summed over tenants."
        default: help = "Tenants in which the projection is faulted."
        }
        return registry.makeGauge(
            descriptor: MetricNameDescriptor(namespace: "minkd", metricName: "projection_\(kind)", unitName: "", helpText: help),
            labels: [("projection", projection)]
        )
    }
}
