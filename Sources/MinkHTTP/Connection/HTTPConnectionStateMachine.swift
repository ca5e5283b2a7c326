/// The protocol logic of one server connection, free of I/O: it is fed received
/// bytes, response completions and clock ticks, and returns the actions the I/O
/// shell must perform.
///
/// Requests are handed out one at a time (``Action/dispatch(_:keepAlive:)``); the
/// next pipelined request is only parsed after ``responseSent(close:now:)``, so
/// responses are written strictly in request order.
///
/// Time is passed in as monotonic nanoseconds (`now`), so tests drive it by hand.
public struct HTTPConnectionStateMachine: Sendable {
    /// Timeouts and limits of a connection.
    public struct Configuration: Sendable {
        /// Parser limits; ``HTTPParserLimits/maxBodyBytes`` also bounds a
        /// decompressed (`Content-Encoding: gzip`) body.
        public var limits: HTTPParserLimits
        /// Time allowed from the first byte of a request (or from accepting the
        /// connection) until its head is complete; then `408` and close.
        public var headerTimeoutNanos: UInt64
        /// Time a keep-alive connection may sit idle between requests; then close.
        public var idleTimeoutNanos: UInt64
        /// Time allowed without any received byte while a body is being read; then `408` and close.
        public var bodyIdleTimeoutNanos: UInt64
        /// Time allowed from the end of a request head until its body is complete, however
        /// steadily it trickles; then `408` and close.
        public var bodyTimeoutNanos: UInt64
        /// Whether to decompress request bodies sent with `Content-Encoding: gzip`.
        public var decompressRequests: Bool

        /// Creates a configuration; defaults follow the minkd contract.
        public init(
            limits: HTTPParserLimits = HTTPParserLimits(),
            headerTimeoutNanos: UInt64 = 10_000_000_000,
            idleTimeoutNanos: UInt64 = 75_000_000_000,
            bodyIdleTimeoutNanos: UInt64 = 10_000_000_000,
            bodyTimeoutNanos: UInt64 = 60_000_000_000,
            decompressRequests: Bool = true
        ) {
            self.limits = limits
            self.headerTimeoutNanos = headerTimeoutNanos
            self.idleTimeoutNanos = idleTimeoutNanos
            self.bodyIdleTimeoutNanos = bodyIdleTimeoutNanos
            self.bodyTimeoutNanos = bodyTimeoutNanos
            self.decompressRequests = decompressRequests
        }
    }

    /// Something the I/O shell must do.
    public enum Action: Sendable {
        /// Queue these bytes for writing (an interim `100 Continue` or an error response).
        case write([UInt8])
        /// The transport itself refuses a request (the error response follows as a `write`):
        /// tell the responder, which has no other way to know (its access log).
        case refused(HTTPRefusal)
        /// Hand the request to the responder; when its response has been queued,
        /// call ``responseSent(close:now:)``. `keepAlive` is false when the connection
        /// must close after this response.
        case dispatch(HTTPRequest, keepAlive: Bool)
        /// Flush queued bytes, then close the connection.
        case close
        /// The head (no body yet) asks `Expect: 100-continue`: ask the responder whether it
        /// refuses the request already (``HTTPResponder/refuseBeforeBody(_:)``): then send its
        /// response and call ``refusedBeforeBody()``; else write ``continueResponse``.
        case expectContinue(HTTPRequest)
    }

    private enum State: Sendable {
        /// Waiting for (the rest of) a request head or body.
        case reading
        /// A request has been dispatched; its response is not yet sent.
        case responding(keepAlive: Bool)
        /// Closing; nothing more is read or dispatched.
        case closed
    }

    /// The configuration in use.
    public let configuration: Configuration
    private var parser: HTTPRequestParser
    private var state: State = .reading
    private var continueSent = false
    private var peerClosed = false
    private var draining = false
    /// Start of the current wait (head timer, idle timer, or the body's last byte).
    private var timerStart: UInt64
    private var headStarted: Bool
    /// When the pending request's head was complete (its body's total deadline counts from
    /// there); `nil` while no body is being read.
    private var bodyStart: UInt64?
    /// Number of requests dispatched on this connection.
    public private(set) var requestCount = 0

    /// Creates the state machine of a connection accepted at `now`.
    public init(configuration: Configuration = Configuration(), now: UInt64) {
        self.configuration = configuration
        self.parser = HTTPRequestParser(limits: configuration.limits)
        self.timerStart = now
        // A fresh connection must send its first head within the header timeout.
        self.headStarted = true
    }

    /// Whether a response is being produced.
    public var isResponding: Bool {
        if case .responding = state { return true }
        return false
    }

    /// Whether the connection is closing or closed.
    public var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    /// Whether the peer has closed its sending side (``peerClosedInput()`` was called): no
    /// more input will come. The I/O shell asks this rather than keeping its own copy.
    public var isPeerInputClosed: Bool { peerClosed }

    /// Received bytes not yet consumed by a dispatched request.
    public var bufferedByteCount: Int { parser.bufferedByteCount }

    /// The instant (monotonic nanoseconds) at which ``timerFired(now:)`` must be
    /// called, or `nil` when no timer runs (while responding or closed).
    public var deadline: UInt64? {
        guard case .reading = state else { return nil }
        if let bodyStart {
            // Both bounds hold: a body that stalls, and one that trickles a byte now and then.
            return min(timerStart &+ configuration.bodyIdleTimeoutNanos, bodyStart &+ configuration.bodyTimeoutNanos)
        }
        if headStarted || parser.isMidRequest { return timerStart &+ configuration.headerTimeoutNanos }
        return timerStart &+ configuration.idleTimeoutNanos
    }

    /// Feeds received bytes.
    public mutating func bytesReceived(_ bytes: ArraySlice<UInt8>, now: UInt64) -> [Action] {
        if case .closed = state { return [] }
        noteProgress(now: now)
        parser.feed(bytes)
        return advance(now: now)
    }

    /// Feeds received bytes straight from a read buffer.
    public mutating func bytesReceived(_ bytes: UnsafeRawBufferPointer, now: UInt64) -> [Action] {
        if case .closed = state { return [] }
        noteProgress(now: now)
        parser.feed(bytes)
        return advance(now: now)
    }

    private mutating func noteProgress(now: UInt64) {
        guard case .reading = state else { return }
        if bodyStart != nil {
            timerStart = now  // the body's idle timer counts from the last byte
        } else if !parser.isMidRequest && !headStarted {
            timerStart = now  // first byte of a new head starts the header timer
            headStarted = true
        }
    }

    /// The peer closed its sending side (read returned 0).
    public mutating func peerClosedInput() -> [Action] {
        peerClosed = true
        switch state {
        case .reading:
            state = .closed
            return [.close]
        case .responding, .closed:
            return []
        }
    }

    /// The response to the dispatched request has been queued for writing.
    /// - Parameter close: the response asked to close the connection
    ///   (`Connection: close`, a close-delimited body, or an error).
    public mutating func responseSent(close: Bool, now: UInt64) -> [Action] {
        guard case .responding(let keepAlive) = state else { return [] }
        if close || !keepAlive || draining {
            state = .closed
            return [.close]
        }
        state = .reading
        continueSent = false
        timerStart = now
        headStarted = parser.isMidRequest
        var actions = advance(now: now)
        if peerClosed, case .reading = state {
            state = .closed
            actions.append(.close)
        }
        return actions
    }

    /// The server is shutting down: idle connections close now, a connection with a
    /// request in flight closes after its response.
    public mutating func beginShutdown() -> [Action] {
        draining = true
        if case .reading = state, !parser.isMidRequest {
            state = .closed
            return [.close]
        }
        return []
    }

    /// The deadline has passed: answer `408` if a request is under way, and close.
    ///
    /// A new connection that has sent nothing by the header deadline gets `408` too (it owed a
    /// head since it was accepted): a client whose first bytes were delayed — a starved process,
    /// a slow network — then learns why it was closed instead of reading a bare EOF. Only a
    /// keep-alive connection idle between requests closes silently.
    public mutating func timerFired(now: UInt64) -> [Action] {
        guard let deadline, now >= deadline else { return [] }
        let midRequest = parser.isMidRequest
        let firstHeadOwed = requestCount == 0 && headStarted
        let inBody = bodyStart != nil
        state = .closed
        if inBody {
            return Self.refuse(status: 408, message: "request body not received in time", requestID: parser.headRequestID) + [.close]
        }
        if midRequest || firstHeadOwed {
            return Self.refuse(status: 408, message: "request headers not received in time") + [.close]
        }
        return [.close]
    }

    private mutating func advance(now: UInt64) -> [Action] {
        guard case .reading = state else { return [] }
        do {
            if let request = try parser.next() {
                bodyStart = nil
                return dispatch(request, now: now)
            }
            if parser.pendingHead != nil, bodyStart == nil {
                // The head is complete and its body is awaited: the body timers start now.
                bodyStart = now
                timerStart = now
            }
            if let head = parser.pendingHead, head.expectsContinue, head.version == .http1_1, !continueSent {
                continueSent = true
                return [.expectContinue(head)]
            }
            return []
        } catch {
            state = .closed
            return Self.refuse(status: error.status, message: error.reason, requestID: parser.headRequestID) + [.close]
        }
    }

    private mutating func dispatch(_ request: HTTPRequest, now: UInt64) -> [Action] {
        var request = request
        // A spooled body (an import) stays encoded as sent: its responder decodes it while reading,
        // with its own limit, instead of inflating it whole here.
        if configuration.decompressRequests, request.bodySpool == nil, request.headers.contains("Content-Encoding") {
            let coding = request.headers.requestContentCoding
            if coding == .identity {
                request.headers.remove(name: "Content-Encoding")
            } else if coding == .unsupported {
                // Reading `br`, `deflate` or a list of codings as plain bytes would misread the
                // body; the contract names the codings it takes.
                state = .closed
                let message = "unsupported Content-Encoding (only gzip and identity are accepted)"
                return Self.refuse(status: 415, message: message, requestID: RequestID.from(request), method: request.method) + [.close]
            } else {
                do {
                    request.body = try Gzip.decompress(request.body, limit: configuration.limits.maxBodyBytes)
                    request.headers.remove(name: "Content-Encoding")
                } catch .tooLarge {
                    state = .closed
                    return Self.refuse(status: 413, message: "decompressed request body too large", requestID: RequestID.from(request), method: request.method) + [.close]
                } catch {
                    state = .closed
                    return Self.refuse(status: 400, message: "invalid gzip request body", requestID: RequestID.from(request), method: request.method) + [.close]
                }
            }
        }
        requestCount += 1
        let keepAlive = request.isKeepAlive && !draining
        state = .responding(keepAlive: keepAlive)
        return [.dispatch(request, keepAlive: keepAlive)]
    }

    /// The responder answered a request that asked `Expect: 100-continue` from its head alone
    /// (``Action/expectContinue(_:)``): its body is never read, so the connection closes once the
    /// response is written.
    public mutating func refusedBeforeBody() -> [Action] {
        guard case .reading = state else { return [] }
        state = .closed
        return [.close]
    }

    /// `HTTP/1.1 100 Continue`.
    public static let continueResponse: [UInt8] = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    /// A refusal by the transport: ``Action/refused(_:)`` then the error response, both with
    /// the same request ID (the client's, or a new one).
    static func refuse(status: Int, message: String, requestID: String? = nil, method: String? = nil) -> [Action] {
        let id = requestID ?? RequestID.generate()
        return [
            .refused(HTTPRefusal(status: status, message: message, requestID: id, method: method)),
            .write(errorResponse(status: status, message: message, requestID: id)),
        ]
    }

    /// A JSON error response in the contract's shape, with `Connection: close` (and
    /// `Retry-After: 1` on a `503`, as the contract asks of every `503`), and an `X-Request-ID`:
    /// the client's (`requestID`, when its head was read far enough to know it) or a new one.
    public static func errorResponse(status: Int, message: String, requestID: String? = nil) -> [UInt8] {
        let body = errorBody(status: status, message: message)
        var headers: HTTPHeaders = ["Content-Type": "application/json; charset=utf-8"]
        headers.add(name: "X-Request-ID", value: requestID ?? RequestID.generate())
        // Every response carries a trace context (docs/http-api.md, Tracing): a request refused
        // here never reached a server span, so this is the first span of a new trace.
        headers.add(name: "traceparent", value: freshTraceparent())
        if status == 503 { headers.add(name: "Retry-After", value: "1") }
        return HTTPResponseEncoder.encode(status: status, headers: headers, body: body, connection: "close")
    }

    /// `00-<32 hex trace id>-<16 hex span id>-00`, both random and non-zero.
    static func freshTraceparent() -> String {
        var g = SystemRandomNumberGenerator()
        func hex(_ words: Int) -> String {
            var text = ""
            for _ in 0..<words {
                var w: UInt64 = 0
                while w == 0 { w = g.next() }
                let digits = String(w, radix: 16)
                text += String(repeating: "0", count: 16 - digits.count) + digits
            }
            return text
        }
        return "00-\(hex(2))-\(hex(1))-00"
    }

    /// `{"error":{"code":...,"message":...}}` for a transport-level error.
    public static func errorBody(status: Int, message: String) -> [UInt8] {
        let code: String
        switch status {
        case 400: code = "bad_request"
        case 408: code = "request_timeout"
        case 413: code = "payload_too_large"
        case 414: code = "uri_too_long"
        case 415: code = "unsupported_media_type"
        case 431: code = "header_fields_too_large"
        case 501: code = "not_implemented"
        case 503: code = "unavailable"
        case 505: code = "http_version_not_supported"
        default: code = "internal"
        }
        return errorBody(code: code, message: message)
    }

    /// `{"error":{"code":...,"message":...,"details":{}}}`: the contract's error shape, whose
    /// `details` is always present.
    public static func errorBody(code: String, message: String) -> [UInt8] {
        var escaped = ""
        for c in message.unicodeScalars {
            switch c {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case _ where c.value < 0x20: escaped += " "
            default: escaped.unicodeScalars.append(c)
            }
        }
        return Array("{\"error\":{\"code\":\"\(code)\",\"message\":\"\(escaped)\",\"details\":{}}}".utf8)
    }
}
