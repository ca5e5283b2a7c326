import Synchronization
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
        // The `GET /healthz 200` series exists from start (at 0), as documented: health checks
        // are the most frequent request, and a scrape before the first one shows the series.
        let health = RequestKey(route: Route.healthz.template, method: "GET", status: 200)
        requestHandles = Mutex([
            health: Self.makeRequestHandles(
                registry, route: health.route, method: health.method, status: health.status,
                buckets: factory.defaultDurationHistogramBuckets)
        ])
        openConnections = registry.makeGauge(descriptor: Self.name("open_connections", "", "Open HTTP connections."))
        sseSubscribers = registry.makeGauge(descriptor: Self.name("sse_subscribers", "", "Open server-sent-event subscriptions."))
    }

    private struct RequestKey: Hashable {
        let route: String
        let method: String
        let status: Int
    }

    /// Request metric handles by route template, method and status, made on first use (the
    /// registry lookup per request was a measurable share of a `/healthz` request). Bounded:
    /// beyond it (odd methods sent by clients) requests go to the registry each time.
    private let requestHandles: Mutex<[RequestKey: (Prometheus.Counter, Prometheus.DurationHistogram)]>
    private static let requestHandleCapacity = 1024

    /// Counts and times one request.
    /// The `method` label: the methods HTTP defines, or `other`.
    static func methodLabel(_ method: String) -> String {
        switch method {
        case "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT": method
        default: "other"
        }
    }

    func recordRequest(route: String, method: String, status: Int, duration: Duration) {
        // A label takes a bounded set of values: any method token a client sends (up to the
        // request line's 8 KiB) made new series before — 57,000 of them from one unauthenticated
        // loop (a black-box audit, 2026-12-07).
        let method = Self.methodLabel(method)
        let key = RequestKey(route: route, method: method, status: status)
        if let (counter, histogram) = requestHandles.withLock({ $0[key] }) {
            counter.increment()
            histogram.record(duration)
            return
        }
        let (counter, histogram) = Self.makeRequestHandles(
            registry, route: route, method: method, status: status, buckets: factory.defaultDurationHistogramBuckets)
        counter.increment()
        histogram.record(duration)
        requestHandles.withLock { h in
            if h.count < Self.requestHandleCapacity { h[key] = (counter, histogram) }
        }
    }

    /// The registry returns the same collectors for the same names and labels.
    private static func makeRequestHandles(
        _ registry: PrometheusCollectorRegistry, route: String, method: String, status: Int, buckets: [Duration]
    ) -> (Prometheus.Counter, Prometheus.DurationHistogram) {
        let counter = registry.makeCounter(
            descriptor: name("http_requests", "total", "HTTP requests by route, method and status."),
            labels: [("route", route), ("method", method), ("status", String(status))]
        )
        let histogram = registry.makeDurationHistogram(
            descriptor: name("http_request_duration", "seconds", "HTTP request latency by route, method and status."),
            labels: [("route", route), ("method", method), ("status", String(status))], buckets: buckets
        )
        return (counter, histogram)
    }

    static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "minkd", metricName: metric, unitName: unit, helpText: help)
    }

    /// The exposition text (format 0.0.4).
    func render() -> [UInt8] { registry.emitToBuffer() }
}
