import Logging
import Mink

extension RequestContext {
    /// What every log line written while serving a request carries besides its own fields: the
    /// request ID and the trace and span IDs of the request's server span (the values of its
    /// access line and of the response's `traceparent`).
    var logMetadata: Logger.Metadata {
        var metadata: Logger.Metadata = ["request_id": "\(requestID)"]
        if let trace = TraceContext.current {
            metadata["trace_id"] = "\(trace.traceID)"
            metadata["span_id"] = "\(trace.spanIDHex)"
        }
        return metadata
    }
}
