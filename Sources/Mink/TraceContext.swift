import Synchronization
import Tracing

/// A W3C trace context (https://www.w3.org/TR/trace-context/): the `traceparent` header's trace
/// ID, parent (span) ID and flags, and the caller's `tracestate`, kept as it came.
///
/// Written here rather than taken from swift-w3c-trace-context: the parser is ~40 lines of byte
/// checks, `tracestate` is only validated and carried (minkd adds no entry of its own), and one
/// less package keeps clean builds short. The rules followed: `version-traceid-parentid-flags` in lowercase hex; version `ff` is
/// invalid; version `00` is exactly 55 characters; a later version may carry more after a `-`;
/// an all-zero trace or parent ID is invalid. An invalid header is ignored (a new trace starts),
/// as the specification asks.
public struct TraceContext: Sendable, Hashable {
    /// The trace ID's high 64 bits.
    public var traceIDHigh: UInt64
    /// The trace ID's low 64 bits.
    public var traceIDLow: UInt64
    /// The span this context names (the parent of the spans started under it).
    public var spanID: UInt64
    /// The trace flags (`01`: sampled).
    public var flags: UInt8
    /// The vendors' `tracestate` of the trace (normalized by ``normalizedTracestate(_:)``), or
    /// `nil`. W3C: a participant continuing a trace keeps the other participants' entries —
    /// minkd has none of its own, so it passes the caller's on unchanged, to its child spans,
    /// the response and the client's outgoing requests.
    public var tracestate: String?

    /// Creates a context from its parts.
    public init(traceIDHigh: UInt64, traceIDLow: UInt64, spanID: UInt64, flags: UInt8 = 1, tracestate: String? = nil) {
        self.traceIDHigh = traceIDHigh
        self.traceIDLow = traceIDLow
        self.spanID = spanID
        self.flags = flags
        self.tracestate = tracestate
    }

    /// Parses a `traceparent` header value and the `tracestate` that came with it; `nil` when
    /// `traceparent` is not a valid one (then `tracestate` is not read either, as W3C asks). An
    /// invalid `tracestate` is dropped; the trace still continues.
    public init?(traceparent: some StringProtocol, tracestate: String?) {
        self.init(traceparent: traceparent)
        self.tracestate = tracestate.flatMap(Self.normalizedTracestate)
    }

    /// Parses a `traceparent` header value; `nil` when it is not a valid one.
    public init?(traceparent: some StringProtocol) {
        let u = Array(traceparent.utf8.prefix(128))
        guard u.count >= 55, u[2] == UInt8(ascii: "-"), u[35] == UInt8(ascii: "-"), u[52] == UInt8(ascii: "-"),
            let version = Self.hex(u[0..<2]), version != 0xff,
            let high = Self.hex(u[3..<19]), let low = Self.hex(u[19..<35]),
            let span = Self.hex(u[36..<52]), let flags = Self.hex(u[53..<55])
        else { return nil }
        if version == 0 {
            guard traceparent.utf8.count == 55 else { return nil }
        } else if traceparent.utf8.count > 55 {
            guard u[55] == UInt8(ascii: "-") else { return nil }
        }
        guard high | low != 0, span != 0 else { return nil }
        self.init(traceIDHigh: high, traceIDLow: low, spanID: span, flags: UInt8(flags))
    }

    /// The `traceparent` value of this context (version `00`). Written byte by byte into one
    /// string: it is on every response.
    public var traceparent: String {
        String(unsafeUninitializedCapacity: 55) { buffer in
            var i = 0
            func put(_ byte: UInt8) { buffer[i] = byte; i += 1 }
            func hex(_ value: UInt64, _ digits: Int) {
                var shift = (digits - 1) * 4
                while shift >= 0 {
                    put(Self.digits[Int((value >> UInt64(shift)) & 0xf)])
                    shift -= 4
                }
            }
            put(UInt8(ascii: "0")); put(UInt8(ascii: "0")); put(UInt8(ascii: "-"))
            hex(traceIDHigh, 16); hex(traceIDLow, 16); put(UInt8(ascii: "-"))
            hex(spanID, 16); put(UInt8(ascii: "-"))
            hex(UInt64(flags), 2)
            return i
        }
    }

    /// The trace ID as 32 lowercase hex digits.
    public var traceID: String { Self.hex(traceIDHigh, digits: 16) + Self.hex(traceIDLow, digits: 16) }

    /// The span ID as 16 lowercase hex digits.
    public var spanIDHex: String { Self.hex(spanID, digits: 16) }

    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// A new span's context: the same trace (and `tracestate`) as this one, a fresh span ID.
    public func child() -> TraceContext {
        TraceContext(traceIDHigh: traceIDHigh, traceIDLow: traceIDLow, spanID: TraceIDGenerator.next(), flags: flags, tracestate: tracestate)
    }

    /// The most `tracestate` list members W3C allows.
    public static let maxTracestateMembers = 32

    /// A `tracestate` header value (several headers joined with `,`, as HTTP combines them) in the
    /// form minkd passes on: list members trimmed of spaces and tabs, empty ones dropped, the rest
    /// unchanged and in order, joined with `,`. `nil` when nothing is left, or when the value is
    /// not valid — a member that is not `key=value` by W3C's grammar (key: `[a-z0-9][a-z0-9_*/-]`
    /// up to 256 bytes, or `tenant@system` with a tenant of up to 241 and a system of up to 14;
    /// value: up to 256 printable ASCII bytes without `,` and `=`, not ending in a space), a key
    /// that appears twice, or more than 32 members. W3C lets a participant drop a `tracestate` it
    /// cannot parse; keeping only valid values means minkd never forwards bytes (a newline, a
    /// non-ASCII byte) that it did not check.
    public static func normalizedTracestate(_ raw: String) -> String? {
        var members: [Substring] = []
        var keys = Set<Substring>()
        for piece in raw.split(separator: ",", omittingEmptySubsequences: false) {
            let member = piece.trimmingOWS()
            if member.isEmpty { continue }
            guard members.count < maxTracestateMembers, let equals = member.firstIndex(of: "="),
                case let key = member[..<equals], isValidTracestateKey(key),
                isValidTracestateValue(member[member.index(after: equals)...]),
                keys.insert(key).inserted
            else { return nil }
            members.append(member)
        }
        return members.isEmpty ? nil : members.joined(separator: ",")
    }

    private static func isValidTracestateKey(_ key: Substring) -> Bool {
        func simple(_ s: Substring, max: Int, firstMayBeDigit: Bool = true) -> Bool {
            let u = s.utf8
            guard let first = u.first, u.count <= max else { return false }
            let isLower = { (b: UInt8) in b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z") }
            let isDigit = { (b: UInt8) in b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
            guard isLower(first) || (firstMayBeDigit && isDigit(first)) else { return false }
            return u.dropFirst().allSatisfy { b in
                isLower(b) || isDigit(b) || b == UInt8(ascii: "_") || b == UInt8(ascii: "-") || b == UInt8(ascii: "*") || b == UInt8(ascii: "/")
            }
        }
        if let at = key.firstIndex(of: "@") {
            // Multi-tenant vendor key: tenant-id@system-id.
            return simple(key[..<at], max: 241) && simple(key[key.index(after: at)...], max: 14, firstMayBeDigit: false)
        }
        return simple(key, max: 256)
    }

    private static func isValidTracestateValue(_ value: Substring) -> Bool {
        let u = value.utf8
        guard !u.isEmpty, u.count <= 256, u.last != UInt8(ascii: " ") else { return false }
        return u.allSatisfy { b in b >= 0x20 && b <= 0x7e && b != UInt8(ascii: ",") && b != UInt8(ascii: "=") }
    }

    /// The first span of a new trace (sampled).
    public static func newTrace() -> TraceContext {
        TraceContext(traceIDHigh: TraceIDGenerator.next(), traceIDLow: TraceIDGenerator.next(), spanID: TraceIDGenerator.next())
    }

    /// Lowercase hex digits only (the specification refuses uppercase).
    private static func hex(_ bytes: ArraySlice<UInt8>) -> UInt64? {
        var value: UInt64 = 0
        for b in bytes {
            let digit: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = b - UInt8(ascii: "a") + 10
            default: return nil
            }
            value = value << 4 | UInt64(digit)
        }
        return value
    }

    private static func hex(_ value: UInt64, digits: Int) -> String {
        let s = String(value, radix: 16)
        return s.utf8.count >= digits ? s : String(repeating: "0", count: digits - s.utf8.count) + s
    }
}

/// Trace and span IDs: SplitMix64 over a randomly seeded counter. A bijection of distinct
/// counter values, so IDs never repeat within a process and are never zero in practice (one
/// counter value in 2^64 maps to 0 and is skipped); one relaxed atomic add per ID, no system
/// call (`SystemRandomNumberGenerator` would make one per ID).
enum TraceIDGenerator {
    private static let seed: UInt64 = UInt64.random(in: 1...UInt64.max)
    private static let counter = Atomic<UInt64>(0)

    static func next() -> UInt64 {
        while true {
            var z = seed &+ counter.wrappingAdd(1, ordering: .relaxed).newValue &* 0x9E37_79B9_7F4A_7C15
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            if z != 0 { return z }
        }
    }
}

/// The `ServiceContext` key under which the current W3C trace context travels.
public enum TraceContextKey: ServiceContextKey {
    public typealias Value = TraceContext
    public static var nameOverride: String? { "w3c.traceparent" }
}

extension ServiceContext {
    /// The W3C trace context of the current span, if any: set by minkd's server span for the
    /// handlers, read by `MinkClient` to send `traceparent`.
    public var traceContext: TraceContext? {
        get { self[TraceContextKey.self] }
        set { self[TraceContextKey.self] = newValue }
    }
}

extension TraceContext {
    /// The trace headers an outgoing request made in the current task should carry: what a
    /// bootstrapped swift-distributed-tracing instrument injects from `ServiceContext.current`,
    /// plus `traceparent` of the current ``TraceContext`` when the instrument wrote none (the
    /// default no-op instrument writes nothing). Empty outside any traced context.
    public static func currentHeaders() -> [(name: String, value: String)] {
        guard let context = ServiceContext.current else { return [] }
        var headers: [(name: String, value: String)] = []
        InstrumentationSystem.instrument.inject(context, into: &headers, using: HeaderListInjector())
        if let trace = context.traceContext, !headers.contains(where: { $0.name.lowercased() == "traceparent" }) {
            headers.append((name: "traceparent", value: trace.traceparent))
            // The `tracestate` that belongs to this `traceparent` (an instrument that wrote its
            // own `traceparent` writes its own `tracestate` too).
            if let state = trace.tracestate { headers.append((name: "tracestate", value: state)) }
        }
        return headers
    }
}

/// Writes injected trace headers into a list.
private struct HeaderListInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [(name: String, value: String)]) {
        carrier.append((name: key, value: value))
    }
}

extension TraceContext {
    /// The trace context of the current task (`ServiceContext.current`), if any.
    public static var current: TraceContext? { ServiceContext.current?.traceContext }

    /// Runs `operation` with `trace` as the current task's trace context (in a copy of
    /// `ServiceContext.current`), for callers that do not import swift-distributed-tracing:
    /// `MinkClient` requests made inside send `traceparent` of it.
    public static func withCurrent<T>(
        _ trace: TraceContext, isolation: isolated (any Actor)? = #isolation, operation: () async throws -> T
    ) async rethrows -> T {
        var context = ServiceContext.current ?? .topLevel
        context.traceContext = trace
        return try await ServiceContext.withValue(context, operation: operation)
    }
}

extension Substring {
    /// Without the leading and trailing spaces and tabs (HTTP's optional whitespace).
    fileprivate func trimmingOWS() -> Substring {
        let isOWS = { (c: Character) in c == " " || c == "\t" }
        guard let start = firstIndex(where: { !isOWS($0) }), let last = lastIndex(where: { !isOWS($0) }) else { return self[endIndex...] }
        return self[start...last]
    }
}
