import Foundation
import Mink
import MinkHTTP
import MinkWire

extension API {
    /// The most bytes of event-stream messages gathered into one write.
    static let sseWriteBytes = 64 * 1024

    /// `GET /v1/subscriptions/...`: a server-sent-event stream (HTTP-API.md section 7).
    ///
    /// Catch-up from storage, `event: caught-up`, then live events; `event: fell-behind` when the
    /// subscriber drops out of the live buffer (it then reads storage again, losing nothing);
    /// `: keepalive` after the keepalive interval without traffic. `Last-Event-ID` overrides
    /// `after`. The stream ends when the client goes away or the server shuts down.
    func subscribe(_ c: RequestContext, target: SubscriptionTarget) throws -> HTTPResponse {
        var after = try c.query.integer("after", default: 0, in: 0...Int64.max)
        // Empty too is refused: an `EventSource` with no last ID sends no header at all.
        if let last = c.request.headers["Last-Event-ID"] {
            guard let v = QueryParameters.strictInteger(last.trimmingCharacters(in: .whitespaces)), v >= 0 else {
                throw APIError(.badRequest, "Last-Event-ID must be a non-negative integer")
            }
            after = v
        }
        if case .category(let category) = target, category.isEmpty { throw APIError(.badRequest, "empty category") }
        let messages = c.store.messages(target, after: UInt64(after), eventTypes: c.query.list("type"), heartbeat: keepaliveInterval)
        let isStream: Bool
        if case .stream = target { isStream = true } else { isStream = false }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/event-stream")  // exactly as the contract spells it (SSE is always UTF-8)
        headers.add(name: "Cache-Control", value: "no-cache")
        headers.add(name: "X-Accel-Buffering", value: "no")
        let authenticator = self.authenticator
        let principal = c.principal
        let tenant = c.tenant
        return HTTPResponse(status: 200, headers: headers, body: .stream { writer in
            // Checked once at the first message (a reload may have come after the request's
            // authentication), then whenever the token list changes.
            var tokens = Int.min
            try await writer.write(SSEEncoder.retry(2000))
            // The messages already read (a page of catch-up, or every event of a commit batch
            // waiting in the live buffer) go out in one write: one hop to the connection's loop
            // and one send per wake-up, not per event — what lets a subscriber that fell behind
            // catch up faster than events arrive (measured: per-event writes were most of the
            // SSE fan-out's cost with 50 subscribers).
            var iterator = messages.makeAsyncIterator()
            var out: [UInt8] = []
            out.reserveCapacity(4096)
            while let message = try await iterator.next() {
                if writer.isShuttingDown { break }
                // A token removed (or rotated, or narrowed) by a reload ends the streams it opened:
                // at the next message, a keepalive at the latest (15 s by default).
                if authenticator.generation != tokens {
                    tokens = authenticator.generation
                    if let principal, !authenticator.stillGrants(principal, tenant: tenant, role: .read) { break }
                }
                switch message {
                case .event(let e):
                    var w = JSONWriter(capacity: 256 + e.data.count)
                    e.write(to: &w)
                    let id = isStream ? String(e.version) : String(e.globalPosition)
                    out += SSEEncoder.message(id: id, data: w.bytes)
                case .caughtUp(let p):
                    out += SSEEncoder.message(event: SSEEventName.caughtUp, data: PositionBody(position: Int64(p)).jsonBytes())
                case .fellBehind(let p):
                    out += SSEEncoder.message(event: SSEEventName.fellBehind, data: PositionBody(position: Int64(p)).jsonBytes())
                case .heartbeat:
                    out += SSEEncoder.comment("keepalive")
                }
                if !iterator.hasBufferedMessages || out.count >= Self.sseWriteBytes {
                    try await writer.write(out)
                    out.removeAll(keepingCapacity: out.capacity <= 16 * 1024)  // a catch-up's large buffer is not kept per subscriber
                }
            }
        })
    }
}
