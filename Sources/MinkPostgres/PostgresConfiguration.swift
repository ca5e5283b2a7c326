import CLibPQ
import Mink

/// How a ``PostgresStorage`` is connected and laid out.
public struct PostgresConfiguration: Sendable {
    /// Where each tenant's data lives.
    public enum Tenancy: Sendable, Hashable {
        /// One set of tables for every tenant, in ``PostgresConfiguration/schema``; every row carries
        /// its `tenant_id` and every statement filters on it.
        case shared
        /// One PostgreSQL schema per tenant, named `prefix + tenantID`, created and migrated on
        /// first use. `prefix` must match `^[a-z_][a-z0-9_]{0,29}$`.
        case schema(prefix: String)
        /// One database per tenant, named `prefix + tenantID`, created on first use through the
        /// configured server, each with its own small pool whose connections close when idle.
        /// `prefix` must match `^[a-z_][a-z0-9_]{0,29}$`.
        case database(prefix: String)
    }

    /// A libpq connection string or URI (`postgresql://user@host:5432/db`, `host=/run/pg dbname=x`).
    public var connectionString: String
    /// The most connections of the pool (per database). Default 10.
    public var poolSize: Int
    /// The schema of the tables with ``Tenancy/shared`` tenancy (default `public`); must match
    /// `^[a-z_][a-z0-9_]{0,62}$`.
    public var schema: String
    /// Where tenants live. Default ``Tenancy/shared``.
    public var tenancy: Tenancy
    /// Apply pending migrations when the storage is created. Default `true`.
    public var migrateOnStart: Bool
    /// Seconds to wait for a connection to be established (libpq `connect_timeout`). Default 5.
    public var connectTimeoutSeconds: Int
    /// With ``Tenancy/database``: connections of a tenant's pool per database. Default 2.
    public var tenantPoolSize: Int
    /// With ``Tenancy/database``: a tenant pool's connections close after this much idle time.
    public var idleTimeout: Duration
    /// The NOTIFY channel of commits. Default `mink_commits`.
    public var channel: String
    /// A projection lease whose holder's lease session has not run its heartbeat for this long is
    /// taken over: the process wanting it ends the holder's session (`pg_terminate_backend`), and
    /// the lease's fencing epoch keeps a holder that wakes up from committing. A process frozen by
    /// SIGSTOP, a debugger or a VM pause otherwise kept its leases — its connection stays open —
    /// and the projections stood still for as long. Default 30 s (heartbeats every 2 s).
    public var leaseStaleAfter: Duration = .seconds(30)
    /// How long an operation may wait for the server (`storage.timeoutSeconds`), waiting for a
    /// pooled connection included; past it the operation fails with `.unavailable` and its
    /// connection is closed and replaced. Default 10 s.
    public var timeout: Duration

    /// Creates a configuration.
    public init(
        connectionString: String, poolSize: Int = 10, schema: String = "public", tenancy: Tenancy = .shared,
        migrateOnStart: Bool = true, connectTimeoutSeconds: Int = 5, tenantPoolSize: Int = 2,
        idleTimeout: Duration = .seconds(60), channel: String = "mink_commits", timeout: Duration = .seconds(10)
    ) {
        self.connectionString = connectionString
        self.poolSize = poolSize
        self.schema = schema
        self.tenancy = tenancy
        self.migrateOnStart = migrateOnStart
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.tenantPoolSize = tenantPoolSize
        self.idleTimeout = idleTimeout
        self.channel = channel
        self.timeout = timeout
    }

    /// Checks the names that end up in SQL.
    /// - Throws: `.validationFailed` naming the bad setting.
    func validate() throws {
        guard Identifier.isPlain(schema, maxBytes: 63) else {
            throw MinkError.validation("postgres schema \"\(schema.prefix(70))\" must match ^[a-z_][a-z0-9_]{0,62}$")
        }
        guard Identifier.isPlain(channel, maxBytes: 63) else {
            throw MinkError.validation("postgres channel \"\(channel.prefix(70))\" must match ^[a-z_][a-z0-9_]{0,62}$")
        }
        switch tenancy {
        case .shared: break
        case .schema(let prefix), .database(let prefix):
            guard prefix.isEmpty || Identifier.isPlain(prefix, maxBytes: 30) else {
                throw MinkError.validation("postgres tenancy prefix \"\(prefix.prefix(40))\" must match ^[a-z_][a-z0-9_]{0,29}$")
            }
        }
        guard poolSize >= 1, tenantPoolSize >= 1 else { throw MinkError.validation("postgres pool sizes must be at least 1") }
        guard timeout > .zero else { throw MinkError.validation("postgres timeout must be positive") }
        // Two heartbeats at least: a live holder is never taken for a frozen one.
        guard leaseStaleAfter >= LeaseSession.heartbeatInterval * 2 else {
            throw MinkError.validation("postgres leaseStaleAfter must be at least \(LeaseSession.heartbeatInterval * 2)")
        }
    }

    /// libpq keywords for a connection, optionally to another database of the same server.
    ///
    /// TCP keepalives and `tcp_user_timeout` (sent data unacknowledged that long breaks the
    /// connection) make the kernel notice a silent peer (a partition, a dead host) about when
    /// ``timeout`` does; the per-call deadline (see `PostgresConnection`) covers a server that is
    /// reachable but does not answer.
    func connectionParameters(database: String? = nil) -> [(String, String)] {
        let seconds = max(Int(timeout.components.seconds), 1)
        var p: [(String, String)] = [
            ("dbname", connectionString),
            ("connect_timeout", String(max(connectTimeoutSeconds, 1))),
            ("client_encoding", "UTF8"),
            ("application_name", "minkd"),
            ("keepalives", "1"),
            ("keepalives_idle", String(seconds)),
            ("keepalives_interval", String(max(seconds / 3, 1))),
            ("keepalives_count", "3"),
            ("tcp_user_timeout", String(seconds * 1000)),
        ]
        if let database { p.append(("dbname", database)) }
        return p
    }
}

/// SQL identifiers built from validated names.
enum Identifier {
    /// `^[a-z_][a-z0-9_]*$`, at most `maxBytes` bytes.
    static func isPlain(_ s: String, maxBytes: Int) -> Bool {
        let b = Array(s.utf8)
        guard let first = b.first, b.count <= maxBytes, first == 95 || (first >= 97 && first <= 122) else { return false }
        return b.allSatisfy { $0 == 95 || ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) }
    }

    /// A double-quoted identifier.
    static func quote(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }

    /// A single-quoted literal (standard_conforming_strings); the value must contain no NUL.
    static func literal(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "''") + "'" }

    /// `prefix + tenant`, kept within PostgreSQL's 63-byte identifier limit: a name that would be
    /// longer is cut and ends with a hash of the tenant ID, so two tenants never share a name
    /// (PostgreSQL would silently truncate instead).
    static func perTenant(prefix: String, tenant: String) -> String {
        let full = prefix + tenant
        if full.utf8.count <= 63 { return full }
        let hash = String(fnv1a64(tenant), radix: 16)
        return String(full.prefix(63 - 1 - hash.count)) + "_" + hash
    }

    /// FNV-1a, 64 bits: stable across processes and releases (Swift's `Hasher` is seeded per process).
    static func fnv1a64(_ s: String) -> UInt64 { FNV1a.hash64(s) }

    /// A signed 64-bit advisory-lock key for a name.
    static func lockKey(_ name: String) -> Int64 { Int64(bitPattern: fnv1a64(name)) }
}

extension PostgresConfiguration {
    /// What libpq finds wrong in a connection string or URI (`PQconninfoParse`: its syntax, an
    /// unknown keyword, a bad percent-encoding), or `nil` when libpq reads it. Checked without
    /// connecting, so that `minkd check-config` refuses what `serve` would fail to open.
    public static func connectionStringProblem(_ connectionString: String) -> String? {
        var message: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(connectionString, &message) else {
            defer { if let message { PQfreemem(message) } }
            let text = message.map { String(cString: $0) } ?? "libpq cannot read it"
            return text.split(whereSeparator: \.isNewline).joined(separator: " ").trimmingCharacters(in: .whitespaces)
        }
        PQconninfoFree(options)
        return nil
    }
}
