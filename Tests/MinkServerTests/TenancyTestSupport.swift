import Foundation
import Mink
import MinkConfig
import MinkHTTP
import MinkPostgres
import MinkServer
import MinkStorageWiring
import MinkWire
import Synchronization
import Testing

/// The storages every tenancy test runs on. PostgreSQL cases get a schema (shared), a schema
/// prefix or a database prefix of their own, so that they run in parallel on one cluster.
enum TenantStorageKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case memory, sqliteShared, sqliteDatabase, postgresShared, postgresSchema, postgresDatabase

    var testDescription: String { rawValue }

    /// Points a configuration at this storage (in `directory` for SQLite).
    func configure(_ config: inout MinkdConfiguration, directory: String) {
        switch self {
        case .memory:
            config.storage.kind = .memory
        case .sqliteShared:
            config.storage.kind = .sqlite
            config.storage.dataDir = directory
            config.tenancy.strategy = .shared
        case .sqliteDatabase:
            config.storage.kind = .sqlite
            config.storage.dataDir = directory
            config.tenancy.strategy = .database
        case .postgresShared, .postgresSchema, .postgresDatabase:
            config.storage.kind = .postgres
            config.storage.url = ProcessInfo.processInfo.environment["MINK_TEST_POSTGRES_URL"]
            config.tenancy.strategy = self == .postgresShared ? .shared : (self == .postgresSchema ? .schema : .database)
            config.tenancy.schemaPrefix = PostgresTestDatabase.freshName("tp_") + "_"
        }
    }

    /// Opens the storage `config` names (PostgreSQL: a fresh schema of its own for `shared`).
    func open(_ config: MinkdConfiguration) async throws -> ServerStorage {
        // A new layout beside the other tests' data in the shared test database, on purpose.
        guard self == .postgresShared else { return try await ServerStorage.open(config, newLayout: .create) }
        return try await PostgresTestDatabase.storage(schema: PostgresTestDatabase.freshName("t_"))
    }

    /// Whether a tenant has its own file, schema or database now; with a strategy that keeps
    /// every tenant in one place, whether the storage's own tenant catalog lists it (asked
    /// directly, not through the API).
    func ownStorageExists(_ storage: ServerStorage, directory: String, tenant: String) async throws -> Bool {
        switch self {
        case .sqliteDatabase:
            return FileManager.default.fileExists(atPath: directory + "/\(tenant).sqlite")
        case .postgresSchema, .postgresDatabase:
            let pg = try #require(storage.events as? PostgresStorage)
            return try await PostgresTestDatabase.ownStorageExists(pg, tenant: tenant)
        case .memory, .sqliteShared, .postgresShared:
            let catalog = try #require(storage.events as? any TenantCatalog)
            return try await catalog.tenantExists(tenant)
        }
    }
}

/// Test tokens: the plaintext, and the config entry holding only its hash.
enum TestToken {
    static func entry(_ name: String, tenant: String, roles: Set<MinkdConfiguration.Token.Role>) -> MinkdConfiguration.Token {
        MinkdConfiguration.Token(name: name, sha256: hashToken(secret(name)), tenant: tenant, roles: roles)
    }

    /// The plaintext token of a named entry.
    static func secret(_ name: String) -> String { "tok-\(name)-0123456789abcdef" }

    /// `Authorization` (and optionally `Mink-Tenant`) headers for a named token.
    static func headers(_ name: String?, tenant: String? = nil) -> [(String, String)] {
        var h: [(String, String)] = []
        if let name { h.append(("Authorization", "Bearer \(secret(name))")) }
        if let tenant { h.append(("Mink-Tenant", tenant)) }
        return h
    }

    /// acme and globex read/write tokens, a `*` admin token `ops`.
    static let standard: [MinkdConfiguration.Token] = [
        entry("acme-rw", tenant: "acme", roles: [.read, .write]),
        entry("globex-rw", tenant: "globex", roles: [.read, .write]),
        entry("ops", tenant: "*", roles: [.read, .write, .admin]),
    ]
}

/// A server with auth on over storage of `kind` in a fresh temporary directory.
func withTenantServer(
    _ kind: TenantStorageKind, tokens: [MinkdConfiguration.Token] = TestToken.standard, autoCreate: Bool = true,
    configure: @escaping (inout MinkdConfiguration) -> Void = { _ in },
    _ body: (TestServer, ServerStorage, String) async throws -> Void
) async throws {
    let directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("minkd-tenancy-\(UUID().uuidString.lowercased())")
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let setUp: (inout MinkdConfiguration) -> Void = { config in
        kind.configure(&config, directory: directory)
        config.auth.enabled = true
        config.auth.tokens = tokens
        config.tenancy.autoCreate = autoCreate
        configure(&config)
    }
    var config = MinkdConfiguration()
    setUp(&config)
    let storage = try await kind.open(config)
    try await withServer(storage: storage, configure: setUp) { s in try await body(s, storage, directory) }
}

extension TestServer {
    /// Collects a subscription's SSE events until `done`.
    func sse(
        _ target: String, headers: [(String, String)], until done: @escaping @Sendable ([SSEEvent]) -> Bool
    ) async throws -> [SSEEvent] {
        var h = HTTPHeaders()
        for (n, v) in headers { h.replace(name: n, value: v) }
        var out: [SSEEvent] = []
        for try await e in client.events(host: "127.0.0.1", port: port, target: target, headers: h, readTimeout: .seconds(10)) {
            out.append(e)
            if done(out) { break }
        }
        return out
    }

    /// Opens a live subscription and reads it up to `caught-up`: the iterator (to read what comes
    /// next — with no byte for 10 s it throws) and the events read so far.
    func openLive(_ target: String, headers: [(String, String)]) async throws -> (SSEEventStream.AsyncIterator, [SSEEvent]) {
        var h = HTTPHeaders()
        for (n, v) in headers { h.replace(name: n, value: v) }
        var live = client.events(host: "127.0.0.1", port: port, target: target, headers: h, readTimeout: .seconds(10)).makeAsyncIterator()
        var replayed: [SSEEvent] = []
        while let e = try await live.next() {
            replayed.append(e)
            if e.event == "caught-up" { break }
        }
        return (live, replayed)
    }

    /// The messages of a subscription up to its `caught-up` event.
    func caughtUp(_ target: String, headers: [(String, String)]) async throws -> [SSEEvent] {
        try await sse(target, headers: headers) { $0.last?.event == "caught-up" }.filter { $0.event == "message" }
    }
}

/// Every storage call, to prove that a refused request touched nothing.
final class StorageSpy: Sendable {
    let calls = Mutex<[String]>([])
    func record(_ call: String) { calls.withLock { $0.append(call) } }
    var count: Int { calls.withLock { $0.count } }
    /// An error that stream reads and head lookups throw while set (storage failure tests).
    let fault = Mutex<(any Error & Sendable)?>(nil)
    func check() throws { if let e = fault.withLock({ $0 }) { throw e } }
    /// While true, appends wait in storage (an append in flight, for deletion tests); `held`
    /// counts the appends waiting.
    let holdAppends = Mutex(false)
    let held = Mutex(0)
    func waitWhileHeld() async throws {
        guard holdAppends.withLock({ $0 }) else { return }
        held.withLock { $0 += 1 }
        defer { held.withLock { $0 -= 1 } }
        let deadline = ContinuousClock.now + .seconds(30)
        while holdAppends.withLock({ $0 }), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
    }
}

/// An adapter forwarding to `InMemoryStorage` and recording every call (and every tenant scoped).
struct SpyStorage: EventStoreAdapter, SnapshotAdapter, ReadModelStore, TenantCatalog {
    let base: InMemoryStorage
    let spy: StorageSpy

    static func make() -> (ServerStorage, StorageSpy) {
        let spy = StorageSpy()
        let s = SpyStorage(base: InMemoryStorage(), spy: spy)
        return (ServerStorage(events: s, snapshots: s, readModels: s, kind: "memory"), spy)
    }

    private func scoped(_ id: String) throws -> SpyStorage {
        spy.record("forTenant(\(id))")
        return SpyStorage(base: try base.scoped(id), spy: spy)
    }

    func forTenant(_ tenantID: String) throws -> any EventStoreAdapter { try scoped(tenantID) }
    func forTenant(_ tenantID: String) throws -> any SnapshotAdapter { try scoped(tenantID) }
    func forTenant(_ tenantID: String) throws -> any ReadModelStore { try scoped(tenantID) }

    func append(_ request: AppendRequest, hook: AppendTransactionHook?) async throws -> AppendResult {
        spy.record("append"); try await spy.waitWhileHeld(); return try await base.append(request, hook: hook)
    }
    func readStream(_ streamID: String, from version: Int64, limit: Int, direction: ReadDirection) async throws -> [Event] {
        spy.record("readStream"); try spy.check(); return try await base.readStream(streamID, from: version, limit: limit, direction: direction)
    }
    func streamInfo(_ streamID: String) async throws -> StreamInfo? { spy.record("streamInfo"); try spy.check(); return try await base.streamInfo(streamID) }
    func readAll(after position: UInt64, filter: EventFilter, limit: Int) async throws -> [Event] {
        spy.record("readAll"); return try await base.readAll(after: position, filter: filter, limit: limit)
    }
    func headPosition() async throws -> UInt64 { spy.record("headPosition"); try spy.check(); return try await base.headPosition() }
    func saveSnapshot(_ snapshot: Snapshot) async throws { spy.record("saveSnapshot"); try await base.saveSnapshot(snapshot) }
    func loadSnapshot(streamID: String) async throws -> Snapshot? { spy.record("loadSnapshot"); return try await base.loadSnapshot(streamID: streamID) }
    func document(_ model: String, id: String) async throws -> Data? { spy.record("document"); return try await base.document(model, id: id) }
    func find(_ model: String, query: Query) async throws -> [StoredDocument] { spy.record("find"); return try await base.find(model, query: query) }
    func count(_ model: String, query: Query) async throws -> Int64 { spy.record("count"); return try await base.count(model, query: query) }
    func transaction<T: Sendable>(_ body: @Sendable (any ReadModelTransaction) throws -> T) async throws -> T {
        spy.record("transaction"); return try await base.transaction(body)
    }
    func dropModel(_ model: String) async throws { spy.record("dropModel"); try await base.dropModel(model) }
    func createIndex(_ model: String, field: FieldPath) async throws { spy.record("createIndex"); try await base.createIndex(model, field: field) }
    func modelNames() async throws -> [String] { spy.record("modelNames"); return try await base.modelNames() }
    func tenants() async throws -> [String] { spy.record("tenants"); return try await base.tenants() }
    func tenantExists(_ tenantID: String) async throws -> Bool { spy.record("tenantExists(\(tenantID))"); return try await base.tenantExists(tenantID) }
    func createTenant(_ tenantID: String) async throws -> Bool { spy.record("createTenant(\(tenantID))"); return try await base.createTenant(tenantID) }
    func deleteTenant(_ tenantID: String) async throws -> Bool { spy.record("deleteTenant(\(tenantID))"); return try await base.deleteTenant(tenantID) }
}

/// Puts a read-model document straight into a tenant's store (projections write them in production).
func putDocument(_ storage: ServerStorage, tenant: String, model: String, id: String, json: String) async throws {
    let store: any ReadModelStore = try storage.readModels.forTenant(tenant)
    try await store.transaction { tx in try tx.putDocument(model, id: id, json: Data(json.utf8)) }
}
