import Foundation
import Mink
import MinkConfig
import MinkServer
import MinkStorageWiring
import MinkWire
import Testing

/// The storages projection tests run on (PostgreSQL: a fresh schema per test).
enum ProjectionStorage: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case memory, sqlite, postgres

    var testDescription: String { rawValue }

    /// Opens a fresh storage; `directory` is where SQLite keeps its files (reopen the same
    /// directory to simulate a restart).
    func open(directory: URL) async throws -> ServerStorage {
        switch self {
        case .memory: return .memory()
        case .sqlite:
            var config = MinkdConfiguration()
            config.storage.kind = .sqlite
            config.storage.dataDir = directory.path
            return try await ServerStorage.open(config)
        case .postgres:
            return try await PostgresTestDatabase.storage(schema: PostgresTestDatabase.freshName("t_"))
        }
    }
}

/// A fresh temporary directory, removed by `cleanup`.
func temporaryDirectory() -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("minkd-proj-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

/// The orders example of CONFIG.md, extended with shipping, items and an audit field.
func ordersYAML(mode: String, extra: String = "") -> String {
    """
    projections:
      - name: orders
        mode: \(mode)
        readModel: orders
        indexes: [status, total]
        handlers:
          - event: OrderCreated
            id: "$.data.orderId"
            set:
              orderId: "$.data.orderId"
              status: "pending"
              total: "$.data.total"
              itemCount: 0
              createdBy: "$.metadata.userId"
              stream: "$.streamId"
          - event: ItemAdded
            id: "$.data.orderId"
            increment:
              itemCount: 1
              total: "$.data.price"
            append:
              skus: "$.data.sku"
          - event: OrderShipped
            id: "$.data.orderId"
            set:
              status: "shipped"
              shippedAt: "$.timestamp"
              shippedAtPosition: "$.globalPosition"
              carrier: "$.data.carrier.name"
          - event: OrderCancelled
            id: "$.data.orderId"
            delete: true
    \(extra)
    """
}

/// Runs `body` with a server on `storage` configured by `yaml` (its `projections:` part).
func withProjectionServer(
    _ kind: ProjectionStorage, yaml: String, directory: URL? = nil, _ body: (TestServer, ServerStorage) async throws -> Void
) async throws {
    let dir = directory ?? temporaryDirectory()
    defer { if directory == nil { try? FileManager.default.removeItem(at: dir) } }
    let storage = try await kind.open(directory: dir)
    let parsed = try MinkdConfiguration.parse(yaml: yaml)
    try await withServer(storage: storage, configure: { $0.projections = parsed.projections }) { s in
        try await body(s, storage)
    }
}

extension TestServer {
    /// Appends events (`(type, data JSON)`) to a stream; expects 201 and returns the reply.
    @discardableResult
    func append(_ stream: String, _ events: [(String, String)], metadata: String? = nil) async throws -> Reply {
        let list = events.map { #"{"type":"\#($0.0)","data":\#($0.1)}"# }.joined(separator: ",")
        let meta = metadata.map { #""metadata":\#($0),"# } ?? ""
        let r = try await request("POST", "/v1/streams/\(stream)", json: #"{\#(meta)"events":[\#(list)]}"#)
        #expect(r.status == 201, "\(r.text)")
        return r
    }

    /// The status of a projection.
    func projection(_ name: String) async throws -> [String: JSONValue] {
        try await request("GET", "/v1/projections/\(name)").json.objectValue ?? [:]
    }

    /// Waits until a projection's checkpoint reaches the head and it is not rebuilding.
    @discardableResult
    func waitForProjection(_ name: String, status wanted: String = "running", timeout: Duration = .seconds(20)) async throws -> [String: JSONValue] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let p = try await projection(name)
            if p["status"]?.stringValue == wanted, p["lag"] == .int(0) { return p }
            if ContinuousClock.now > deadline {
                Issue.record("projection \(name) did not reach \(wanted) with no lag: \(p)")
                return p
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Waits until a projection's status satisfies `condition` (or `timeout` passes).
    @discardableResult
    func waitForProjection(
        _ name: String, timeout: Duration = .seconds(10), until condition: ([String: JSONValue]) -> Bool
    ) async throws -> [String: JSONValue] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let p = try await projection(name)
            if condition(p) || ContinuousClock.now > deadline { return p }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// A read-model document, or nil on 404.
    func document(_ model: String, _ id: String) async throws -> [String: JSONValue]? {
        let r = try await request("GET", "/v1/readmodels/\(model)/\(id)")
        if r.status == 404 { return nil }
        #expect(r.status == 200, "\(r.text)")
        return r.json.objectValue
    }

    /// The IDs (field `id` of each item) returned by a query body.
    func queryIDs(_ model: String, _ body: String) async throws -> [String] {
        let r = try await request("POST", "/v1/readmodels/\(model)/query", json: body)
        #expect(r.status == 200, "\(body) → \(r.text)")
        return (r["items"]?.arrayValue ?? []).compactMap { $0.objectValue?["id"]?.stringValue }
    }
}
