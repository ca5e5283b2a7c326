import Mink

/// Everything `minkd` is configured with (CONFIG.md): the merge of defaults, the
/// YAML file, `MINKD_*` environment variables and command-line flags, in
/// increasing precedence. Build one with `load(file:environment:overrides:)`.
///
/// Every property starts at its documented default, so `MinkdConfiguration()`
/// is the configuration of a plain `minkd` with no file, environment or flags.
public struct MinkdConfiguration: Hashable, Sendable {
    /// Where the server listens (`listen`, default `127.0.0.1:6465`).
    public var listen = ListenAddress(host: "127.0.0.1", port: 6465)
    /// Storage (`storage.*`).
    public var storage = Storage()
    /// Tenancy (`tenancy.*`).
    public var tenancy = Tenancy()
    /// Authentication (`auth.*`).
    public var auth = Auth()
    /// Limits (`limits.*`).
    public var limits = Limits()
    /// HTTP behaviour (`http.*`).
    public var http = HTTP()
    /// Shutdown (`shutdown.*`).
    public var shutdown = Shutdown()
    /// Stream retention (`retention.*`).
    public var retention = Retention()
    /// The metrics endpoint (`metrics.*`).
    public var metrics = Metrics()
    /// Logging (`logging.*`).
    public var logging = Logging()
    /// Declarative projections (`projections`), in file order.
    public var projections: [ProjectionDefinition] = []
    /// Whether `--insecure` (or `MINKD_INSECURE`) allows a non-loopback listen with auth disabled.
    public var insecure = false
    /// The config file this was loaded from, if any (for SIGHUP reloads).
    public var configFile: String?

    /// The default configuration.
    public init() {}

    /// `storage:`
    public struct Storage: Hashable, Sendable {
        /// The storage adapters.
        public enum Kind: String, Hashable, Sendable, CaseIterable {
            /// Embedded SQLite (the default): one file per tenant database under `dataDir`.
            case sqlite
            /// PostgreSQL at `url`.
            case postgres
            /// In memory: nothing survives a restart.
            case memory
        }

        /// `storage.kind` (default `sqlite`; `MINKD_STORAGE`, `--storage`).
        public var kind = Kind.sqlite
        /// `storage.dataDir` for SQLite (default `./minkd-data`; `MINKD_DATA_DIR`, `--data-dir`).
        public var dataDir = "./minkd-data"
        /// `storage.url` for PostgreSQL (`MINKD_DATABASE_URL`, `--database-url`); required for `postgres`.
        public var url: String?
        /// `storage.pool`: PostgreSQL connections per tenant database (default 10).
        public var pool = 10
        /// `storage.timeoutSeconds`: a storage call not answered by then fails the request with
        /// `503 unavailable` (default 10).
        public var timeoutSeconds = 10
        /// Where `kind` was set explicitly (`storage.kind`, `MINKD_STORAGE`, `--storage`), or nil
        /// when it is the default: a URL selects `postgres` only when no kind was given.
        public internal(set) var kindSource: String?
        /// Where `url` was set (`storage.url`, `MINKD_DATABASE_URL`, `--database-url`), for messages.
        public internal(set) var urlSource: String?

        /// Equal when the settings are: where they came from (`kindSource`, `urlSource`) is
        /// provenance for messages, not configuration.
        public static func == (a: Storage, b: Storage) -> Bool {
            a.kind == b.kind && a.dataDir == b.dataDir && a.url == b.url && a.pool == b.pool && a.timeoutSeconds == b.timeoutSeconds
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(kind)
            hasher.combine(dataDir)
            hasher.combine(url)
            hasher.combine(pool)
            hasher.combine(timeoutSeconds)
        }

        /// The defaults.
        public init() {}
    }

    /// `tenancy:` — the core's (seed's) multi-tenancy settings, which the storage wiring
    /// hands to the storage: `strategy` (default `shared`), `schemaPrefix` (default `tenant_`),
    /// `autoCreate` (default true).
    public typealias Tenancy = MultiTenancyConfig

    /// `auth:`
    public struct Auth: Hashable, Sendable {
        /// `auth.enabled` (default false).
        public var enabled = false
        /// `auth.tokens`.
        public var tokens: [Token] = []

        /// The defaults.
        public init() {}

        /// The token whose hash matches `presented`, comparing every configured
        /// hash in constant time (all are compared, whichever matches).
        public func token(matching presented: String) -> Token? {
            let hash = Array(hashToken(presented).utf8)
            var found: Token?
            for token in tokens where constantTimeEquals(Array(token.sha256.utf8), hash) && found == nil {
                found = token
            }
            return found
        }
    }

    /// One API token (`auth.tokens[i]`).
    public struct Token: Hashable, Sendable {
        /// What a token may do.
        public enum Role: String, Hashable, Sendable, CaseIterable, Comparable {
            /// Every GET and SSE.
            case read
            /// Appends and snapshots.
            case write
            /// `/v1/admin/*` and projection control.
            case admin

            /// Orders roles as declared (read < write < admin), for stable output.
            public static func < (lhs: Role, rhs: Role) -> Bool {
                allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
            }
        }

        /// A name for logs; never the token.
        public var name: String
        /// The token's SHA-256 as 64 lowercase hex characters.
        public var sha256: String
        /// The tenant the token is bound to, or `*` for every tenant.
        public var tenant: String
        /// The roles granted.
        public var roles: Set<Role>
        /// `rateLimit: {perSecond, burst}`: the token's request rate limit, or `nil` for none.
        public var rateLimit: RateLimit?

        /// A token bucket's size and refill rate (HTTP-API.md section 2: over it, `429`).
        public struct RateLimit: Hashable, Sendable {
            /// Requests per second the bucket refills with (> 0; fractions allowed).
            public var perSecond: Double
            /// The bucket's size: requests that may come at once after a quiet spell (≥ 1).
            public var burst: Int

            /// Creates a limit.
            public init(perSecond: Double, burst: Int) {
                self.perSecond = perSecond
                self.burst = burst
            }
        }

        /// Creates a token entry.
        public init(name: String, sha256: String, tenant: String, roles: Set<Role>, rateLimit: RateLimit? = nil) {
            self.name = name
            self.sha256 = sha256
            self.tenant = tenant
            self.roles = roles
            self.rateLimit = rateLimit
        }

        /// Whether the token is valid for every tenant.
        public var isWildcard: Bool { tenant == "*" }
    }

    /// `limits:`
    public struct Limits: Hashable, Sendable {
        /// `limits.maxBodyBytes`: request body after decompression (default 4 MiB).
        public var maxBodyBytes = 4_194_304
        /// `limits.maxEventsPerAppend` (default 1,000).
        public var maxEventsPerAppend = 1000
        /// `limits.maxEventBytes`: one event's `data` (default 1 MiB).
        public var maxEventBytes = 1_048_576
        /// `limits.maxConnections`: open connections (default 10,000).
        public var maxConnections = 10_000
        /// `limits.subscriberBuffer`: one SSE subscriber's live buffer, in events (default 10,000).
        public var subscriberBuffer = 10_000
        /// `limits.maxRequestLineBytes` (default 8 KiB; `414` beyond).
        public var maxRequestLineBytes = 8192
        /// `limits.maxHeaderBytes`: all header lines together (default 16 KiB; `431` beyond).
        public var maxHeaderBytes = 16_384
        /// `limits.maxImportBytes`: an import body (`POST /v1/admin/import`) after decompression;
        /// 0 (the default) means no limit. `maxBodyBytes` does not apply to imports.
        public var maxImportBytes = 0

        /// The defaults.
        public init() {}
    }

    /// `http:`
    public struct HTTP: Hashable, Sendable {
        /// `http.idleTimeoutSeconds`: idle keep-alive connections close after this (default 75).
        public var idleTimeoutSeconds = 75
        /// `http.headerTimeoutSeconds`: a request head must arrive within this (default 10; `408`).
        public var headerTimeoutSeconds = 10
        /// `http.bodyIdleTimeoutSeconds`: a request body that sends nothing for this long gets `408` and a close (default 10).
        public var bodyIdleTimeoutSeconds = 10
        /// `http.bodyTimeoutSeconds`: a request body not complete this long after its headers gets `408` and a close (default 60).
        public var bodyTimeoutSeconds = 60
        /// `http.gzipMinBytes`: responses this large or larger are gzip-encoded when accepted (default 1024).
        public var gzipMinBytes = 1024
        /// `http.sseKeepaliveSeconds`: a `: keepalive` comment after this long without traffic (default 15).
        public var sseKeepaliveSeconds = 15
        /// `http.cors.allowedOrigins`: origins allowed by CORS; empty disables CORS (default).
        public var corsAllowedOrigins: [String] = []

        /// The defaults.
        public init() {}
    }

    /// `retention:`
    public struct Retention: Hashable, Sendable {
        /// `retention.scavengeIntervalSeconds`: how often the scavenger removes the events that
        /// streams' retention rules exclude (default 600; ≥ 1).
        public var scavengeIntervalSeconds = 600

        /// The defaults.
        public init() {}
    }

    /// `shutdown:`
    public struct Shutdown: Hashable, Sendable {
        /// `shutdown.graceSeconds`: how long in-flight requests may finish (default 20).
        public var graceSeconds = 20

        /// The defaults.
        public init() {}
    }

    /// `metrics:`
    public struct Metrics: Hashable, Sendable {
        /// `metrics.requireToken`: `/metrics` needs a token with role `read` (default false).
        public var requireToken = false

        /// The defaults.
        public init() {}
    }

    /// `logging:`
    public struct Logging: Hashable, Sendable {
        /// Log levels, as swift-log names them.
        public enum Level: String, Hashable, Sendable, CaseIterable {
            /// `trace`
            case trace
            /// `debug`
            case debug
            /// `info` (the default)
            case info
            /// `notice`
            case notice
            /// `warning`
            case warning
            /// `error`
            case error
            /// `critical`
            case critical
        }

        /// Log line formats.
        public enum Format: String, Hashable, Sendable, CaseIterable {
            /// Human-readable lines.
            case text
            /// One JSON object per line.
            case json
        }

        /// `logging.level` (default `info`; `MINKD_LOG_LEVEL`, `--log-level`).
        public var level = Level.info
        /// `logging.format`; nil (`auto`, the default) means text on a terminal, JSON otherwise
        /// (`MINKD_LOG_FORMAT`, `--log-format`).
        public var format: Format?

        /// The defaults.
        public init() {}

        /// The format to use: the configured one, or text on a terminal and JSON otherwise.
        public func effectiveFormat(isTerminal: Bool) -> Format {
            format ?? (isTerminal ? .text : .json)
        }
    }
}

extension MinkdConfiguration {
    /// The one validation of a merged configuration, run by `load` (and `parse`) so that every
    /// command — `serve`, `check-config`, `migrate` — refuses exactly the same things:
    /// - a storage kind that needs a URL without one;
    /// - `tenancy.strategy: schema` on SQLite, anything but `shared` on memory;
    /// - `auth.enabled` with no tokens (every request would be refused);
    /// - a non-loopback listen address with auth disabled unless `insecure`.
    /// - Throws: `ConfigError` naming the key.
    public func validate() throws {
        if storage.kind == .postgres && (storage.url ?? "").isEmpty {
            throw ConfigError(keyPath: "storage.url", message: "required when storage.kind is postgres (or set MINKD_DATABASE_URL, --database-url)")
        }
        if storage.kind == .sqlite && tenancy.strategy == .schema {
            throw ConfigError(
                keyPath: "tenancy.strategy",
                message: "\"schema\" needs PostgreSQL (storage.kind: postgres); SQLite supports shared and database"
            )
        }
        if storage.kind == .memory && tenancy.strategy != .shared {
            throw ConfigError(
                keyPath: "tenancy.strategy",
                message: "\"\(tenancy.strategy.rawValue)\" needs \(tenancy.strategy == .schema ? "PostgreSQL" : "PostgreSQL or SQLite"); the memory storage keeps every tenant in one store (shared)"
            )
        }
        if auth.enabled && auth.tokens.isEmpty {
            throw ConfigError(
                keyPath: "auth.tokens",
                message: "auth is enabled but no token is configured, so every request would be refused (add tokens: `minkd hash-token`)"
            )
        }
        if metrics.requireToken && !auth.enabled {
            // With auth off no token is ever checked: /metrics would be open whatever this says.
            throw ConfigError(
                keyPath: "metrics.requireToken",
                message: "needs auth.enabled: with authentication disabled no token is checked, so /metrics would stay open"
            )
        }
        try validateForServe(insecure: insecure)
    }

    /// Checks the listen address: a non-loopback listen address with
    /// auth disabled is refused unless `insecure` (the `--insecure` flag).
    ///
    /// Why: a network-reachable event store with no authentication hands every
    /// tenant's data to anyone who can reach the port.
    /// - Throws: `ConfigError` naming `listen`.
    public func validateForServe(insecure: Bool) throws {
        if !auth.enabled && !listen.isLoopback && !insecure {
            throw ConfigError(
                keyPath: "listen",
                message: "refusing to listen on non-loopback address \(listen) with auth disabled (enable auth or pass --insecure)"
            )
        }
    }
}
