import Metrics
import Prometheus

/// The server's Prometheus registry and the metrics it records itself.
///
/// Labels are route templates, methods and status codes — never raw paths, stream IDs or
/// tenant IDs (cardinality, and tenants must not learn of each other through metrics).
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory
    let openConnections: Prometheus.Gauge
    let sseSubscribers: Prometheus.Gauge

    init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .seconds(2.5), .seconds(5),
        ]
        self.factory = factory
        openConnections = registry.makeGauge(descriptor: Self.name("open_connections", "", "Open HTTP connections."))
        sseSubscribers = registry.makeGauge(descriptor: Self.name("sse_subscribers", "", "Open server-sent-event subscriptions."))
    }

    /// Counts and times one request.
    func recordRequest(route: String, method: String, status: Int, duration: Duration) {
        let labels = [("route", route), ("method", method), ("status", String(status))]
        registry.makeCounter(descriptor: Self.name("http_requests", "total", "HTTP requests by route, method and status."), labels: labels)
            .increment()
        registry.makeDurationHistogram(
            descriptor: Self.name("http_request_duration", "seconds", "HTTP request latency by route and method."),
            labels: [("route", route), ("method", method)], buckets: factory.defaultDurationHistogramBuckets
        ).record(duration)
    }

    static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "minkd", metricName: metric, unitName: unit, helpText: help)
    }

    /// The exposition text (format 0.0.4).
    func render() -> [UInt8] { registry.emitToBuffer() }
}
