import MinkWire

/// The API's endpoints. Each case carries its percent-decoded path parameters.
enum Route: Sendable, Equatable {
    case healthz, readyz, metrics, info
    case append(String), load(String), streamInfo(String), getSnapshot(String), putSnapshot(String)
    case events, head
    case subscribeAll, subscribeCategory(String), subscribeStream(String)
    case listProjections, projection(String), rebuildProjection(String), pauseProjection(String), resumeProjection(String)
    case readModelDocument(String, String), readModelList(String), readModelQuery(String), readModelCount(String)
    case listTenants, createTenant, deleteTenant(String)
    /// `GET /v1/openapi.json`; the web console's files under `/ui/` (`""` is `/ui/` itself; `/ui`
    /// is `consoleRoot`, redirected to `/ui/` so that the page's relative URLs resolve).
    case openAPI, consoleRoot, console(String)
    /// `GET /v1/admin/export`, `POST /v1/admin/import` (section 9).
    case export, importEvents
    case listStreams, deleteStream(String), getStreamMetadata(String), putStreamMetadata(String), scavenge

    /// A label for metrics and logs: the route template, never the raw path.
    var template: String {
        switch self {
        case .healthz: "/healthz"
        case .readyz: "/readyz"
        case .metrics: "/metrics"
        case .info: "/v1/info"
        case .append, .load: "/v1/streams/{streamId}"
        case .streamInfo: "/v1/streams/{streamId}/info"
        case .getSnapshot, .putSnapshot: "/v1/streams/{streamId}/snapshot"
        case .events: "/v1/events"
        case .head: "/v1/events/head"
        case .subscribeAll: "/v1/subscriptions/all"
        case .subscribeCategory: "/v1/subscriptions/categories/{category}"
        case .subscribeStream: "/v1/subscriptions/streams/{streamId}"
        case .listProjections: "/v1/projections"
        case .projection: "/v1/projections/{name}"
        case .rebuildProjection: "/v1/projections/{name}/rebuild"
        case .pauseProjection: "/v1/projections/{name}/pause"
        case .resumeProjection: "/v1/projections/{name}/resume"
        case .readModelDocument: "/v1/readmodels/{model}/{id}"
        case .readModelList: "/v1/readmodels/{model}"
        case .readModelQuery: "/v1/readmodels/{model}/query"
        case .readModelCount: "/v1/readmodels/{model}/count"
        case .listTenants, .createTenant: "/v1/admin/tenants"
        case .deleteTenant: "/v1/admin/tenants/{id}"
        case .openAPI: "/v1/openapi.json"
        case .consoleRoot: "/ui"
        case .console: "/ui/{file}"
        case .export: "/v1/admin/export"
        case .importEvents: "/v1/admin/import"
        case .listStreams: "/v1/streams"
        case .deleteStream: "/v1/streams/{streamId}"
        case .getStreamMetadata, .putStreamMetadata: "/v1/streams/{streamId}/metadata"
        case .scavenge: "/v1/admin/scavenge"
        }
    }
}

/// Why a request matched no route.
enum RouteFailure: Error, Equatable {
    /// No endpoint has this path.
    case notFound
    /// The path exists, but not for this method; `template` is the path's route template (for logs).
    case methodNotAllowed(allow: [String], template: String)
    /// A path segment has broken percent-encoding or is not UTF-8.
    case badPath(String)
    /// The stream-ID segment of a stream path percent-decodes to bytes that are not UTF-8: the path
    /// names a stream, just not a valid one (`invalid_stream_id`, like any other bad stream ID).
    case invalidStreamID(String)
}

/// Matches a raw request path and method to a ``Route``.
///
/// The path is split on `/` *before* percent-decoding, so `%2F` inside a stream ID stays part
/// of the ID. `HEAD` is accepted wherever `GET` is.
enum Router {
    static func route(method: String, path: String) throws(RouteFailure) -> Route {
        // The most frequent requests, appends and stream reads, take no split, decode or table:
        // a `/v1/streams/{streamId}` whose ID has no `/` and no `%` (what the general way would
        // match to the same route; other methods go that way for their 405).
        if let streamID = plainStreamID(path) {
            switch method {
            case "POST": return .append(streamID)
            case "GET", "HEAD": return .load(streamID)
            case "DELETE": return .deleteStream(streamID)
            default: break
            }
        }
        return try generalRoute(method: method, path: path)
    }

    /// ``route(method:path:)`` without its shortcut for plain stream paths (tests check that the
    /// two agree).
    static func generalRoute(method: String, path: String) throws(RouteFailure) -> Route {
        let table: [(method: String, route: Route)]
        if let known = staticRoutes[path] {
            table = known
        } else {
            guard path.hasPrefix("/") else { throw .notFound }
            let raw = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
            var segments: [String] = []
            for (index, s) in raw.enumerated() {
                guard let decoded = percentDecode(s) else {
                    if isStreamIDSegment(index, of: raw), percentDecodedBytes(s) != nil {
                        throw .invalidStreamID("invalid stream ID: its percent-decoding is not UTF-8")
                    }
                    throw .badPath("invalid percent-encoding in the path")
                }
                segments.append(decoded)
            }
            table = candidates(segments)
        }
        let m = method == "HEAD" ? "GET" : method
        if table.isEmpty { throw .notFound }
        if let hit = table.first(where: { $0.method == m }) { return hit.route }
        var allow = table.map(\.method)
        if allow.contains("GET") { allow.append("HEAD") }
        throw .methodNotAllowed(allow: allow, template: table[0].route.template)
    }

    /// The stream ID of `/v1/streams/{streamId}` when it is plain: not empty, no `/` (another
    /// route) and no `%` (escapes are decoded by the general way).
    private static func plainStreamID(_ path: String) -> String? {
        let prefix = "/v1/streams/".utf8
        let bytes = path.utf8
        guard bytes.count > prefix.count, bytes.starts(with: prefix) else { return nil }
        let id = path.utf8.dropFirst(prefix.count)
        guard !id.contains(UInt8(ascii: "/")), !id.contains(UInt8(ascii: "%")) else { return nil }
        return String(Substring(id))
    }

    /// The paths without parameters, matched whole before any splitting or decoding: the
    /// frequent ones (health checks, the global log) cost one hash lookup instead of a split,
    /// a decode and three arrays per request. Built from ``candidates(_:)``, so the two cannot
    /// disagree; a path spelled with escapes (`/heal%74hz`) takes the general way to the same
    /// route.
    private static let staticRoutes: [String: [(method: String, route: Route)]] = {
        var table: [String: [(method: String, route: Route)]] = [:]
        for path in [
            "/healthz", "/readyz", "/metrics", "/v1/info", "/v1/events", "/v1/events/head", "/v1/projections",
            "/v1/subscriptions/all", "/v1/admin/tenants", "/v1/openapi.json", "/ui", "/ui/", "/v1/admin/export", "/v1/admin/import",
            "/v1/streams", "/v1/admin/scavenge",
        ] {
            table[path] = candidates(path.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map(String.init))
        }
        return table
    }()

    /// Every (method, route) pair for a path.
    private static func candidates(_ s: [String]) -> [(method: String, route: Route)] {
        func nonEmpty(_ x: String) -> Bool { !x.isEmpty }
        switch s.count {
        case 1:
            switch s[0] {
            case "healthz": return [("GET", .healthz)]
            case "readyz": return [("GET", .readyz)]
            case "metrics": return [("GET", .metrics)]
            case "ui": return [("GET", .consoleRoot)]
            default: return []
            }
        case 2 where s[0] == "ui": return [("GET", .console(s[1]))]
        case 2 where s[0] == "v1":
            switch s[1] {
            case "info": return [("GET", .info)]
            case "events": return [("GET", .events)]
            case "projections": return [("GET", .listProjections)]
            case "openapi.json": return [("GET", .openAPI)]
            case "streams": return [("GET", .listStreams)]
            default: return []
            }
        case 3 where s[0] == "v1":
            switch s[1] {
            case "streams" where nonEmpty(s[2]):
                return [("POST", .append(s[2])), ("GET", .load(s[2])), ("DELETE", .deleteStream(s[2]))]
            case "events" where s[2] == "head": return [("GET", .head)]
            case "subscriptions" where s[2] == "all": return [("GET", .subscribeAll)]
            case "projections" where nonEmpty(s[2]): return [("GET", .projection(s[2]))]
            case "readmodels" where nonEmpty(s[2]): return [("GET", .readModelList(s[2]))]
            case "admin" where s[2] == "tenants": return [("GET", .listTenants), ("POST", .createTenant)]
            case "admin" where s[2] == "export": return [("GET", .export)]
            case "admin" where s[2] == "import": return [("POST", .importEvents)]
            case "admin" where s[2] == "scavenge": return [("POST", .scavenge)]
            default: return []
            }
        case 4 where s[0] == "v1":
            switch s[1] {
            case "streams" where nonEmpty(s[2]) && s[3] == "info": return [("GET", .streamInfo(s[2]))]
            case "streams" where nonEmpty(s[2]) && s[3] == "snapshot":
                return [("GET", .getSnapshot(s[2])), ("PUT", .putSnapshot(s[2]))]
            case "streams" where nonEmpty(s[2]) && s[3] == "metadata":
                return [("GET", .getStreamMetadata(s[2])), ("PUT", .putStreamMetadata(s[2]))]
            case "subscriptions" where s[2] == "categories" && nonEmpty(s[3]): return [("GET", .subscribeCategory(s[3]))]
            case "subscriptions" where s[2] == "streams" && nonEmpty(s[3]): return [("GET", .subscribeStream(s[3]))]
            case "projections" where nonEmpty(s[2]):
                switch s[3] {
                case "rebuild": return [("POST", .rebuildProjection(s[2]))]
                case "pause": return [("POST", .pauseProjection(s[2]))]
                case "resume": return [("POST", .resumeProjection(s[2]))]
                default: return []
                }
            case "readmodels" where nonEmpty(s[2]) && nonEmpty(s[3]):
                var out: [(String, Route)] = [("GET", .readModelDocument(s[2], s[3]))]
                if s[3] == "query" { out.append(("POST", .readModelQuery(s[2]))) }
                if s[3] == "count" { out.append(("POST", .readModelCount(s[2]))) }
                return out
            case "admin" where s[2] == "tenants" && nonEmpty(s[3]): return [("DELETE", .deleteTenant(s[3]))]
            default: return []
            }
        default:
            return []
        }
    }

    /// Whether segment `index` of a raw path is where a stream ID goes: `/v1/streams/{streamId}[/…]`
    /// or `/v1/subscriptions/streams/{streamId}`.
    private static func isStreamIDSegment(_ index: Int, of raw: [Substring]) -> Bool {
        guard raw.count > 2, raw[0] == "v1" else { return false }
        if raw[1] == "streams" { return index == 2 }
        if raw[1] == "subscriptions", raw.count == 4, raw[2] == "streams" { return index == 3 }
        return false
    }

    /// Decodes `%XX` escapes; `nil` for a broken escape or bytes that are not UTF-8.
    static func percentDecode(_ s: Substring, plusIsSpace: Bool = false) -> String? {
        if !s.utf8.contains(UInt8(ascii: "%")) && !(plusIsSpace && s.utf8.contains(UInt8(ascii: "+"))) { return String(s) }
        return percentDecodedBytes(s, plusIsSpace: plusIsSpace).flatMap { String(validating: $0, as: UTF8.self) }
    }

    /// The bytes `%XX` escapes decode to, whether UTF-8 or not; `nil` for a broken escape.
    static func percentDecodedBytes(_ s: Substring, plusIsSpace: Bool = false) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count)
        var it = s.utf8.makeIterator()
        while let b = it.next() {
            if b == UInt8(ascii: "%") {
                guard let h = it.next().flatMap(hex), let l = it.next().flatMap(hex) else { return nil }
                out.append(h << 4 | l)
            } else if plusIsSpace && b == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
            } else {
                out.append(b)
            }
        }
        return out
    }

    private static func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): b - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// The parsed query string of a request.
struct QueryParameters: Sendable {
    private var values: [String: [String]] = [:]

    /// Parses `a=1&b=2`; `+` means space; a broken escape is an error, and so is a parameter
    /// given twice: which of two `hard` or `expectedVersion` values a client meant cannot be
    /// guessed, and taking either silently could delete for ever.
    init(_ query: String?) throws(APIError) {
        guard let query, !query.isEmpty else { return }
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = Router.percentDecode(parts[0], plusIsSpace: true),
                let value = Router.percentDecode(parts.count > 1 ? parts[1] : "", plusIsSpace: true)
            else { throw APIError(.badRequest, "invalid percent-encoding in the query string") }
            if values[name] != nil {
                throw APIError(.badRequest, "query parameter \(name.prefix(64)) is given more than once")
            }
            values[name, default: []].append(value)
        }
    }

    /// The value of a parameter.
    subscript(_ name: String) -> String? { values[name]?.last }

    /// An integer parameter within bounds, or the default when absent.
    func integer(_ name: String, default def: Int64, in range: ClosedRange<Int64>) throws(APIError) -> Int64 {
        guard let raw = self[name] else { return def }
        guard let v = Self.strictInteger(raw), range.contains(v) else {
            throw APIError(.badRequest, "query parameter \(name) must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return v
    }

    /// An integer as the contract writes one: optional `-`, then ASCII digits only (`Int64`'s
    /// own parser also takes `+1`).
    static func strictInteger(_ text: some StringProtocol) -> Int64? {
        let digits = text.utf8.first == UInt8(ascii: "-") ? text.utf8.dropFirst() : text.utf8[...]
        guard !digits.isEmpty, digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return Int64(text)
    }

    /// Refuses any parameter not in `known`: on a request that destroys data, a misspelt
    /// `expectedversion` or `Hard` must not be ignored (the deletion would run without its check,
    /// or soft instead of hard).
    func allowOnly(_ known: [String]) throws(APIError) {
        // `access_token` is the authenticator's (refused on writes with auth on, ignored with it off).
        guard let unknown = values.keys.sorted().first(where: { !known.contains($0) && $0 != AccessToken.parameter }) else { return }
        throw APIError(
            .badRequest,
            "unknown query parameter \(unknown.prefix(64)); this request takes \(known.joined(separator: ", "))",
            details: ["parameter": .string(String(unknown.prefix(64)))]
        )
    }

    /// A comma-separated list parameter (empty when absent).
    func list(_ name: String) -> [String] {
        guard let raw = self[name] else { return [] }
        return raw.split(separator: ",").map { String($0) }.filter { !$0.isEmpty }
    }
}
