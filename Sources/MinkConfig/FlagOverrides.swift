/// The `minkd serve` flags that override configuration, as given on the command
/// line (validated by `MinkdConfiguration.load`, so a bad value is reported the
/// same way as a bad key: `config: --listen: invalid address "x" ...`).
///
/// `--config` is not here: it is the `file` argument of `load`.
public struct FlagOverrides: Hashable, Sendable {
    /// `--listen HOST:PORT`
    public var listen: String?
    /// `--data-dir DIR`
    public var dataDir: String?
    /// `--storage sqlite|postgres|memory`
    public var storage: String?
    /// `--database-url URL`
    public var databaseURL: String?
    /// `--log-level trace|debug|info|notice|warning|error|critical`
    public var logLevel: String?
    /// `--log-format text|json`
    public var logFormat: String?
    /// `--insecure`
    public var insecure: Bool

    /// Creates overrides; nil (or false) leaves the setting to the environment, file or default.
    public init(
        listen: String? = nil, dataDir: String? = nil, storage: String? = nil, databaseURL: String? = nil,
        logLevel: String? = nil, logFormat: String? = nil, insecure: Bool = false
    ) {
        self.listen = listen
        self.dataDir = dataDir
        self.storage = storage
        self.databaseURL = databaseURL
        self.logLevel = logLevel
        self.logFormat = logFormat
        self.insecure = insecure
    }

    /// No overrides.
    public static let none = FlagOverrides()
}

/// The environment variables `MinkdConfiguration.load` reads. An empty value counts as unset.
public enum EnvironmentKey {
    /// Overrides `listen`.
    public static let listen = "MINKD_LISTEN"
    /// Overrides `storage.dataDir`.
    public static let dataDir = "MINKD_DATA_DIR"
    /// Overrides `storage.kind`.
    public static let storage = "MINKD_STORAGE"
    /// Overrides `storage.url`.
    public static let databaseURL = "MINKD_DATABASE_URL"
    /// Overrides `logging.level`.
    public static let logLevel = "MINKD_LOG_LEVEL"
    /// Overrides `logging.format` (`text`, `json` or `auto`).
    public static let logFormat = "MINKD_LOG_FORMAT"
    /// The config file, when `--config` is not given.
    public static let config = "MINKD_CONFIG"
    /// `1`/`true`/`yes` acts as `--insecure`.
    public static let insecure = "MINKD_INSECURE"
    /// Overrides `tenancy.strategy`.
    public static let tenancyStrategy = "MINKD_TENANCY_STRATEGY"
    /// Overrides `auth.enabled` (`true`/`false`).
    public static let authEnabled = "MINKD_AUTH_ENABLED"
    /// Overrides `metrics.requireToken` (`true`/`false`).
    public static let metricsRequireToken = "MINKD_METRICS_REQUIRE_TOKEN"
    /// Overrides `shutdown.graceSeconds`.
    public static let graceSeconds = "MINKD_SHUTDOWN_GRACE_SECONDS"

    /// Every variable, in documentation order.
    public static let all = [
        listen, dataDir, storage, databaseURL, logLevel, logFormat, config, insecure,
        tenancyStrategy, authEnabled, metricsRequireToken, graceSeconds,
    ]
}
