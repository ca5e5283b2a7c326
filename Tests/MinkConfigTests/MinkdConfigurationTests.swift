import Foundation
import Testing
@testable import MinkConfig

/// Writes `text` to a fresh temporary file and returns its path.
func temporaryFile(_ text: String) throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("minkd-config-\(UUID().uuidString).yaml")
    try text.write(to: url, atomically: true, encoding: .utf8)
    return url.path
}

/// The message of the `ConfigError` thrown by `body`, or nil.
func configError(_ body: () throws -> Any) -> String? {
    do {
        _ = try body()
        return nil
    } catch let error as ConfigError {
        return error.description
    } catch {
        return "unexpected \(error)"
    }
}

func parseError(_ yaml: String) -> String? {
    configError { try MinkdConfiguration.parse(yaml: yaml, source: "test.yaml") }
}

@Suite(.timeLimit(.minutes(3))) struct DefaultsTests {
    @Test func defaultsMatchCONFIG() throws {
        let config = try MinkdConfiguration.load(file: nil, environment: [:], overrides: .none)
        #expect(config == MinkdConfiguration())
        #expect(config.listen.description == "127.0.0.1:6465")
        #expect(config.storage.kind == .sqlite)
        #expect(config.storage.dataDir == "./minkd-data")
        #expect(config.storage.url == nil)
        #expect(config.storage.pool == 10)
        #expect(config.tenancy.strategy == .shared)
        #expect(config.tenancy.schemaPrefix == "tenant_")
        #expect(config.tenancy.autoCreate)
        #expect(!config.auth.enabled && config.auth.tokens.isEmpty)
        #expect(config.limits.maxBodyBytes == 4_194_304)
        #expect(config.limits.maxEventsPerAppend == 1000)
        #expect(config.limits.maxEventBytes == 1_048_576)
        #expect(config.limits.maxConnections == 10_000)
        #expect(config.limits.subscriberBuffer == 10_000)
        #expect(config.limits.maxRequestLineBytes == 8192 && config.limits.maxHeaderBytes == 16_384)
        #expect(config.http.idleTimeoutSeconds == 75)
        #expect(config.http.headerTimeoutSeconds == 10)
        #expect(config.http.bodyIdleTimeoutSeconds == 10 && config.http.bodyTimeoutSeconds == 60)
        #expect(config.storage.timeoutSeconds == 10)
        #expect(config.http.gzipMinBytes == 1024)
        #expect(config.http.sseKeepaliveSeconds == 15)
        #expect(config.http.corsAllowedOrigins.isEmpty)
        #expect(config.shutdown.graceSeconds == 20)
        #expect(!config.metrics.requireToken)
        #expect(config.logging.level == .info)
        #expect(config.logging.format == nil)
        #expect(config.logging.effectiveFormat(isTerminal: true) == .text)
        #expect(config.logging.effectiveFormat(isTerminal: false) == .json)
        #expect(config.projections.isEmpty && !config.insecure && config.configFile == nil)
    }

    @Test func emptyFileMeansDefaults() throws {
        #expect(try MinkdConfiguration.parse(yaml: "") == MinkdConfiguration())
        #expect(try MinkdConfiguration.parse(yaml: "# only a comment\n") == MinkdConfiguration())
        #expect(try MinkdConfiguration.parse(yaml: "auth:\nlimits:\n") == MinkdConfiguration())
    }

    @Test func exampleFileLoads() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let path = root.appendingPathComponent("config/minkd.example.yaml").path
        let config = try MinkdConfiguration.load(file: path, environment: [:], overrides: .none)
        #expect(config.configFile == path)
        var expected = MinkdConfiguration()
        expected.configFile = path
        expected.auth.tokens = config.auth.tokens
        expected.projections = config.projections
        #expect(config == expected, "the example documents the defaults")
        #expect(config.auth.tokens.count == 2)
        #expect(config.auth.token(matching: "example-token-do-not-use") == nil, "the example's hashes grant nothing")
        #expect(!(try String(contentsOfFile: path, encoding: .utf8)).contains("3690a4a2ed3b26b46a696e9ab873a300d9da3ae56bc84352e2bf724885c91dfd"))
        #expect(config.auth.tokens[1].isWildcard && config.auth.tokens[1].roles == [.read, .write, .admin])

        let orders = try #require(config.projections.first)
        #expect(orders.name == "orders" && orders.mode == .async && orders.readModel == "orders")
        #expect(orders.indexes == ["status", "total"])
        #expect(orders.handlers.map(\.event) == ["OrderCreated", "ItemAdded", "OrderShipped", "OrderCancelled"])
        let created = orders.handlers[0]
        #expect(created.id == .path(EventPath(root: .data, segments: ["orderId"])))
        #expect(created.set.map(\.field) == ["orderId", "status", "total", "itemCount", "createdAt"])
        #expect(created.set[1].value == .string("pending"))
        #expect(created.set[3].value == .int(0))
        #expect(created.set[4].value == .path(EventPath(root: .timestamp)))
        let added = orders.handlers[1]
        #expect(added.increment == [
            FieldAssignment("itemCount", .int(1)),
            FieldAssignment("total", .path(EventPath(root: .data, segments: ["price"]))),
        ])
        #expect(added.append == [FieldAssignment("items", .object([
            .init("sku", .path(EventPath(root: .data, segments: ["sku"]))),
            .init("price", .path(EventPath(root: .data, segments: ["price"]))),
        ]))])
        #expect(orders.handlers[2].unset == ["cancelReason"])
        #expect(orders.handlers[3].delete && orders.handlers[3].set.isEmpty)
    }

    @Test func theCONFIGExampleParses() throws {
        let config = try MinkdConfiguration.parse(yaml: """
            listen: "127.0.0.1:6465"
            storage:
              kind: postgres
              dataDir: "./minkd-data"
              url: "postgres://minkd:pw@db/minkd"
              pool: 10
              timeoutSeconds: 3
            tenancy: {strategy: schema, schemaPrefix: "tenant_", autoCreate: true}
            auth:
              enabled: true
              tokens:
                - name: "acme-rw"
                  sha256: "\(hashToken("t"))"
                  tenant: "acme"
                  roles: [read, write]
            limits: {maxBodyBytes: 4194304, maxEventsPerAppend: 1000, maxEventBytes: 1048576, maxConnections: 10000, subscriberBuffer: 10000}
            http:
              idleTimeoutSeconds: 75
              headerTimeoutSeconds: 10
              bodyIdleTimeoutSeconds: 5
              bodyTimeoutSeconds: 30
              gzipMinBytes: 1024
              cors: { allowedOrigins: ["https://app.example.com"] }
            shutdown: {graceSeconds: 20}
            metrics: {requireToken: false}
            """)
        #expect(config.storage.kind == .postgres && config.tenancy.strategy == .schema)
        #expect(config.auth.enabled && config.auth.tokens[0].roles == [.read, .write])
        #expect(config.http.corsAllowedOrigins == ["https://app.example.com"])
        #expect(config.storage.timeoutSeconds == 3)
        #expect(config.http.bodyIdleTimeoutSeconds == 5 && config.http.bodyTimeoutSeconds == 30)
        #expect(throws: ConfigError.self) { try MinkdConfiguration.parse(yaml: "storage: {timeoutSeconds: 0}") }
    }
}

@Suite(.timeLimit(.minutes(3))) struct PrecedenceTests {
    static let file = """
        listen: "127.0.0.1:1111"
        storage: {kind: sqlite, dataDir: "/file/data"}
        logging: {level: debug, format: text}
        shutdown: {graceSeconds: 5}
        """

    @Test func flagBeatsEnvironmentBeatsFileBeatsDefault() throws {
        let path = try temporaryFile(Self.file)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let environment = [
            "MINKD_LISTEN": "127.0.0.1:2222", "MINKD_DATA_DIR": "/env/data", "MINKD_STORAGE": "memory",
            "MINKD_LOG_LEVEL": "warning", "MINKD_LOG_FORMAT": "json",
        ]
        let flags = FlagOverrides(
            listen: "127.0.0.1:3333", dataDir: "/flag/data", storage: "postgres", databaseURL: "postgres://flag",
            logLevel: "error", logFormat: "text", insecure: true
        )

        let fileOnly = try MinkdConfiguration.load(file: path, environment: [:], overrides: .none)
        #expect(fileOnly.listen.port == 1111 && fileOnly.storage.dataDir == "/file/data" && fileOnly.storage.kind == .sqlite)
        #expect(fileOnly.storage.url == nil && fileOnly.logging.level == .debug && fileOnly.logging.format == .text)
        #expect(fileOnly.shutdown.graceSeconds == 5 && fileOnly.limits == MinkdConfiguration.Limits())

        let withEnv = try MinkdConfiguration.load(file: path, environment: environment, overrides: .none)
        #expect(withEnv.listen.port == 2222 && withEnv.storage.dataDir == "/env/data" && withEnv.storage.kind == .memory)
        #expect(withEnv.storage.url == nil && withEnv.logging.level == .warning && withEnv.logging.format == .json)
        #expect(!withEnv.insecure)

        let withFlags = try MinkdConfiguration.load(file: path, environment: environment, overrides: flags)
        #expect(withFlags.listen.port == 3333 && withFlags.storage.dataDir == "/flag/data" && withFlags.storage.kind == .postgres)
        #expect(withFlags.storage.url == "postgres://flag" && withFlags.logging.level == .error && withFlags.logging.format == .text)
        #expect(withFlags.insecure)
        #expect(withFlags.shutdown.graceSeconds == 5, "keys with no flag or variable keep the file's value")

        let envOnly = try MinkdConfiguration.load(file: nil, environment: ["MINKD_LISTEN": "[::1]:4444"], overrides: .none)
        #expect(envOnly.listen == ListenAddress(host: "::1", port: 4444))
    }

    @Test func configFileFromEnvironmentUnlessFlagged() throws {
        let envFile = try temporaryFile("listen: \"127.0.0.1:1\"")
        defer { try? FileManager.default.removeItem(atPath: envFile) }
        let flagFile = try temporaryFile("listen: \"127.0.0.1:2\"")
        defer { try? FileManager.default.removeItem(atPath: flagFile) }
        let viaEnv = try MinkdConfiguration.load(file: nil, environment: ["MINKD_CONFIG": envFile], overrides: .none)
        #expect(viaEnv.listen.port == 1 && viaEnv.configFile == envFile)
        let viaFlag = try MinkdConfiguration.load(file: flagFile, environment: ["MINKD_CONFIG": envFile], overrides: .none)
        #expect(viaFlag.listen.port == 2 && viaFlag.configFile == flagFile)
    }

    @Test func extraEnvironmentVariables() throws {
        let config = try MinkdConfiguration.load(file: nil, environment: [
            "MINKD_INSECURE": "1", "MINKD_TENANCY_STRATEGY": "database", "MINKD_AUTH_ENABLED": "false",
            "MINKD_METRICS_REQUIRE_TOKEN": "no", "MINKD_SHUTDOWN_GRACE_SECONDS": "3", "MINKD_LOG_FORMAT": "auto",
            "MINKD_LISTEN": "",  // empty counts as unset
        ], overrides: .none)
        #expect(config.insecure && config.tenancy.strategy == .database && !config.auth.enabled)
        // (`yes` with auth off is refused: `metricsRequireTokenNeedsAuth`.)
        #expect(!config.metrics.requireToken && config.shutdown.graceSeconds == 3 && config.logging.format == nil)
        #expect(config.listen.port == 6465)
        #expect(EnvironmentKey.all.count == 12 && EnvironmentKey.all.allSatisfy { $0.hasPrefix("MINKD_") })
    }

    @Test(arguments: [
        (["MINKD_LISTEN": "nope"], "config: MINKD_LISTEN: invalid address \"nope\" (expected HOST:PORT, e.g. 127.0.0.1:6465 or [::1]:6465)"),
        (["MINKD_STORAGE": "mysql"], "config: MINKD_STORAGE: unknown storage kind \"mysql\" (expected sqlite, postgres, memory)"),
        (["MINKD_LOG_LEVEL": "verbose"], "config: MINKD_LOG_LEVEL: unknown log level \"verbose\" (expected trace, debug, info, notice, warning, error, critical)"),
        (["MINKD_LOG_FORMAT": "xml"], "config: MINKD_LOG_FORMAT: unknown log format \"xml\" (expected text, json, auto)"),
        (["MINKD_INSECURE": "maybe"], "config: MINKD_INSECURE: expected true or false, found \"maybe\""),
        (["MINKD_SHUTDOWN_GRACE_SECONDS": "-1"], "config: MINKD_SHUTDOWN_GRACE_SECONDS: expected an integer from 0 to 315360000, found \"-1\""),
        // Plain decimal, as the file asks.
        (["MINKD_SHUTDOWN_GRACE_SECONDS": "010"], "config: MINKD_SHUTDOWN_GRACE_SECONDS: expected an integer from 0 to 315360000, found \"010\""),
        (["MINKD_SHUTDOWN_GRACE_SECONDS": "+5"], "config: MINKD_SHUTDOWN_GRACE_SECONDS: expected an integer from 0 to 315360000, found \"+5\""),
        (["MINKD_SHUTDOWN_GRACE_SECONDS": "9223372036854775807"],
         "config: MINKD_SHUTDOWN_GRACE_SECONDS: expected an integer from 0 to 315360000, found \"9223372036854775807\""),
        (["MINKD_STORAGE": "postgres"], "config: storage.url: required when storage.kind is postgres (or set MINKD_DATABASE_URL, --database-url)"),
        (["MINKD_CONFIG": "/nonexistent/minkd.yaml"], "config: /nonexistent/minkd.yaml: cannot read the config file (No such file or directory)"),
    ])
    func environmentErrors(_ environment: [String: String], _ message: String) {
        #expect(configError { try MinkdConfiguration.load(file: nil, environment: environment, overrides: .none) } == message)
    }

    /// A config path that is a directory, or a file that is not UTF-8: one plain reason each.
    @Test func unreadableConfigFilesSayWhy() throws {
        let dir = FileManager.default.temporaryDirectory.path
        #expect(configError { try MinkdConfiguration.load(file: dir, environment: [:], overrides: .none) }
            == "config: \(dir): cannot read the config file (it is a directory)")
        let latin1 = FileManager.default.temporaryDirectory.appendingPathComponent("minkd-config-\(UUID().uuidString).yaml")
        try Data([0x6C, 0x69, 0x73, 0x74, 0x65, 0x6E, 0x3A, 0x20, 0xE9, 0x0A]).write(to: latin1)
        defer { try? FileManager.default.removeItem(at: latin1) }
        #expect(configError { try MinkdConfiguration.load(file: latin1.path, environment: [:], overrides: .none) }
            == "config: \(latin1.path): cannot read the config file (it is not UTF-8 text)")
        // An empty path (an unset shell variable): not Foundation's "NSCocoaErrorDomain error 256".
        #expect(configError { try MinkdConfiguration.load(file: "", environment: [:], overrides: .none) }
            == "config: --config: the path is empty: give a YAML file, or leave --config out")
        // Not a regular file but readable: a pipe (`--config <(…)`) and /dev/null are read, not
        // refused as "Permission denied".
        #expect(try MinkdConfiguration.load(file: "/dev/null", environment: [:], overrides: .none).listen == MinkdConfiguration().listen)
        let fifo = FileManager.default.temporaryDirectory.appendingPathComponent("minkd-config-\(UUID().uuidString).fifo").path
        #expect(mkfifo(fifo, 0o600) == 0)
        defer { unlink(fifo) }
        let writer = Thread {
            let fd = open(fifo, O_WRONLY)
            let text = Array("listen: \"127.0.0.1:7\"\n".utf8)
            _ = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
        }
        writer.start()
        #expect(try MinkdConfiguration.load(file: fifo, environment: [:], overrides: .none).listen.port == 7)
    }

    @Test(arguments: [
        (FlagOverrides(listen: "1.2.3.4"), "config: --listen: invalid address \"1.2.3.4\" (expected HOST:PORT, e.g. 127.0.0.1:6465 or [::1]:6465)"),
        (FlagOverrides(storage: "oracle"), "config: --storage: unknown storage kind \"oracle\" (expected sqlite, postgres, memory)"),
        (FlagOverrides(logLevel: "loud"), "config: --log-level: unknown log level \"loud\" (expected trace, debug, info, notice, warning, error, critical)"),
        (FlagOverrides(logFormat: "xml"), "config: --log-format: unknown log format \"xml\" (expected text, json, auto)"),
        (FlagOverrides(dataDir: ""), "config: --data-dir: must not be empty"),
    ])
    func flagErrors(_ flags: FlagOverrides, _ message: String) {
        #expect(configError { try MinkdConfiguration.load(file: nil, environment: [:], overrides: flags) } == message)
    }
}

/// CONFIG.md's revised rules: how the storage kind follows from a database URL, one validation
/// for every command, `auto` everywhere, misspelt variables named.
@Suite(.timeLimit(.minutes(3))) struct OperatorRuleTests {
    @Test func aDatabaseURLWithoutAKindSelectsPostgresFromEverySource() throws {
        let file = try temporaryFile("storage: {url: \"postgres://file/db\"}\n")
        defer { try? FileManager.default.removeItem(atPath: file) }
        let fromFile = try MinkdConfiguration.load(file: file, environment: [:], overrides: .none)
        #expect(fromFile.storage.kind == .postgres && fromFile.storage.url == "postgres://file/db")
        let fromEnv = try MinkdConfiguration.load(file: nil, environment: ["MINKD_DATABASE_URL": "postgres://env/db"], overrides: .none)
        #expect(fromEnv.storage.kind == .postgres && fromEnv.storage.url == "postgres://env/db")
        let fromFlag = try MinkdConfiguration.load(file: nil, environment: [:], overrides: FlagOverrides(databaseURL: "postgres://flag/db"))
        #expect(fromFlag.storage.kind == .postgres && fromFlag.storage.url == "postgres://flag/db")
        let explicit = try MinkdConfiguration.load(
            file: nil, environment: ["MINKD_STORAGE": "postgres"], overrides: FlagOverrides(databaseURL: "postgres://flag/db")
        )
        #expect(explicit.storage.kind == .postgres)
        #expect(try MinkdConfiguration.parse(yaml: "storage: {url: \"postgres://x/y\"}").storage.kind == .postgres)
        #expect(try MinkdConfiguration.load(file: nil, environment: [:], overrides: .none).storage.kind == .sqlite)
    }

    @Test(arguments: [
        ([:], FlagOverrides(storage: "sqlite", databaseURL: "postgres://h/db"),
         "config: --storage: storage kind \"sqlite\" conflicts with the database URL from --database-url (a URL means postgres: drop the kind, or drop the URL to use sqlite)"),
        (["MINKD_STORAGE": "memory", "MINKD_DATABASE_URL": "postgres://h/db"], FlagOverrides.none,
         "config: MINKD_STORAGE: storage kind \"memory\" conflicts with the database URL from MINKD_DATABASE_URL (a URL means postgres: drop the kind, or drop the URL to use memory)"),
        (["MINKD_DATABASE_URL": "postgres://h/db"], FlagOverrides(storage: "sqlite"),
         "config: --storage: storage kind \"sqlite\" conflicts with the database URL from MINKD_DATABASE_URL (a URL means postgres: drop the kind, or drop the URL to use sqlite)"),
    ])
    func aURLWithAnExplicitSQLiteOrMemoryKindIsAnError(_ environment: [String: String], _ flags: FlagOverrides, _ message: String) {
        #expect(configError { try MinkdConfiguration.load(file: nil, environment: environment, overrides: flags) } == message)
    }

    @Test func theFileCanConflictToo() {
        #expect(parseError("storage: {kind: sqlite, url: \"postgres://h/db\"}\n")
            == "config: storage.kind: storage kind \"sqlite\" conflicts with the database URL from storage.url (a URL means postgres: drop the kind, or drop the URL to use sqlite)")
    }

    /// The memory storage keeps every tenant in one store: another strategy would be ignored
    /// while `/v1/info` reported it.
    @Test func memoryStorageIsSharedOnly() {
        for strategy in ["schema", "database"] {
            #expect(configError { try MinkdConfiguration.load(file: nil, environment: ["MINKD_TENANCY_STRATEGY": strategy], overrides: FlagOverrides(storage: "memory")) }
                == "config: tenancy.strategy: \"\(strategy)\" needs \(strategy == "schema" ? "PostgreSQL" : "PostgreSQL or SQLite"); the memory storage keeps every tenant in one store (shared)")
        }
        #expect(configError { try MinkdConfiguration.load(file: nil, environment: ["MINKD_TENANCY_STRATEGY": "shared"], overrides: FlagOverrides(storage: "memory")) } == nil)
    }

    @Test func authEnabledWithoutTokensIsRefused() {
        let message = "config: auth.tokens: auth is enabled but no token is configured, so every request would be refused (add tokens: `minkd hash-token`)"
        #expect(parseError("auth: {enabled: true}\n") == message)
        #expect(parseError("auth: {enabled: true, tokens: []}\n") == message)
        #expect(configError { try MinkdConfiguration.load(file: nil, environment: ["MINKD_AUTH_ENABLED": "true"], overrides: .none) } == message)
    }

    /// `metrics.requireToken` without auth would be silently ignored (every request has every
    /// role): refused, naming the key.
    @Test func originsAsBrowsersSendThem() {
        for ok in ["https://a.example", "http://localhost:3000", "http://127.0.0.1:8080", "http://[::1]:9", "https://x-y.example:8443", "*"] {
            #expect(ok == "*" || MinkdConfiguration.isOrigin(ok), "\(ok)")
        }
        for bad in ["https://a.example/", "https://a.example/p", "https://a.example:0", "https://a.example:", "http://[::1", "http://[]",
                    "ftp://a.example", "https://a b", "https://a.example:80x", "https://a.example#f",
                    // Spellings a browser never sends in Origin: they could never match.
                    "http://App.Example.com", "https://a.example:443", "http://a.example:80", "http://a.example:08080"] {
            #expect(!MinkdConfiguration.isOrigin(bad), "\(bad)")
        }
    }

    @Test func metricsRequireTokenNeedsAuth() throws {
        let message = "config: metrics.requireToken: needs auth.enabled: with authentication disabled no token is checked, so /metrics would stay open"
        #expect(parseError("metrics: {requireToken: true}\n") == message)
        #expect(configError { try MinkdConfiguration.load(file: nil, environment: ["MINKD_METRICS_REQUIRE_TOKEN": "true"], overrides: .none) } == message)
        _ = try MinkdConfiguration.parse(yaml: "metrics: {requireToken: false}\n")
    }

    @Test func loadRefusesWhatServeRefuses() throws {
        #expect(configError { try MinkdConfiguration.load(file: nil, environment: [:], overrides: FlagOverrides(listen: "0.0.0.0:6465")) }
            == "config: listen: refusing to listen on non-loopback address 0.0.0.0:6465 with auth disabled (enable auth or pass --insecure)")
        let insecure = try MinkdConfiguration.load(file: nil, environment: [:], overrides: FlagOverrides(listen: "0.0.0.0:6465", insecure: true))
        #expect(insecure.insecure)
        #expect(parseError("tenancy: {strategy: schema}\n")
            == "config: tenancy.strategy: \"schema\" needs PostgreSQL (storage.kind: postgres); SQLite supports shared and database")
        #expect(try MinkdConfiguration.parse(yaml: "storage: {url: \"postgres://h/db\"}\ntenancy: {strategy: schema}\n").tenancy.strategy == .schema)
    }

    @Test func logFormatAutoIsAcceptedEverywhere() throws {
        let file = try temporaryFile("logging: {format: auto}\n")
        defer { try? FileManager.default.removeItem(atPath: file) }
        #expect(try MinkdConfiguration.load(file: file, environment: [:], overrides: .none).logging.format == nil)
        #expect(try MinkdConfiguration.load(file: nil, environment: ["MINKD_LOG_FORMAT": "auto"], overrides: .none).logging.format == nil)
        let flag = try MinkdConfiguration.load(
            file: nil, environment: ["MINKD_LOG_FORMAT": "json"], overrides: FlagOverrides(logFormat: "auto")
        )
        #expect(flag.logging.format == nil, "the flag's auto overrides the environment's json")
    }

    @Test func unknownMINKDVariablesAreNamed() {
        let unknown = MinkdConfiguration.unknownEnvironmentVariables(in: [
            "MINKD_DATABSE_URL": "postgres://x", "MINKD_LISTEN": "127.0.0.1:1", "MINKD_FROBNICATE": "1", "HOME": "/root",
            // Kubernetes service links for a Service named minkd: not ours, not reported.
            "MINKD_PORT": "tcp://10.0.0.1:6465", "MINKD_SERVICE_HOST": "10.0.0.1", "MINKD_PORT_6465_TCP_ADDR": "10.0.0.1",
        ])
        #expect(unknown == ["MINKD_DATABSE_URL (did you mean MINKD_DATABASE_URL?)", "MINKD_FROBNICATE"])
        #expect(MinkdConfiguration.unknownEnvironmentVariables(in: ["MINKD_LOG_LEVEL": "info"]).isEmpty)
    }
}

@Suite(.timeLimit(.minutes(3))) struct FileErrorTests {
    @Test(arguments: [
        ("limits:\n  maxBodyByte: 5\n", "config: limits.maxBodyByte: unknown key"),
        ("listen_on: x\n", "config: listen_on: unknown key"),
        ("limits:\n  maxBodyBytes: -5\n", "config: limits.maxBodyBytes: must be positive, found -5"),
        ("limits:\n  maxEventBytes: 0\n", "config: limits.maxEventBytes: must be positive, found 0"),
        ("limits:\n  maxConnections: lots\n", "config: limits.maxConnections: expected an integer, found \"lots\""),
        ("limits:\n  subscriberBuffer: 1.5\n", "config: limits.subscriberBuffer: expected an integer, found 1.5"),
        // YAML 1.1 would read 010 as octal 8: anything but plain decimal is refused.
        ("limits:\n  maxBodyBytes: 010\n", "config: limits.maxBodyBytes: expected a decimal integer, found 010"),
        ("limits:\n  maxBodyBytes: 0x10\n", "config: limits.maxBodyBytes: expected a decimal integer, found 0x10"),
        ("limits:\n  maxBodyBytes: 1_000\n", "config: limits.maxBodyBytes: expected a decimal integer, found 1_000"),
        ("limits: 5\n", "config: limits: expected a mapping, found 5"),
        ("http:\n  gzipMinBytes: -1\n", "config: http.gzipMinBytes: must be ≥ 0, found -1"),
        ("http:\n  cors: {allowedOrigins: \"*\"}\n", "config: http.cors.allowedOrigins: expected a list, found \"*\""),
        ("http:\n  cors: {allowedOrigins: [\"example.com\"]}\n", "config: http.cors.allowedOrigins[0]: invalid origin \"example.com\" (expected \"*\" or scheme://host[:port])"),
        // A path, a port out of range, a user or a query make no origin a browser sends.
        ("http:\n  cors: {allowedOrigins: [\"https://a.com/path\"]}\n", "config: http.cors.allowedOrigins[0]: invalid origin \"https://a.com/path\" (expected \"*\" or scheme://host[:port])"),
        ("http:\n  cors: {allowedOrigins: [\"https://a.com:99999\"]}\n", "config: http.cors.allowedOrigins[0]: invalid origin \"https://a.com:99999\" (expected \"*\" or scheme://host[:port])"),
        ("http:\n  cors: {allowedOrigins: [\"https://ok.example\", \"http://u@a.com\"]}\n", "config: http.cors.allowedOrigins[1]: invalid origin \"http://u@a.com\" (expected \"*\" or scheme://host[:port])"),
        ("http:\n  cors: {allowedOrigins: [\"https://a.com?x\"]}\n", "config: http.cors.allowedOrigins[0]: invalid origin \"https://a.com?x\" (expected \"*\" or scheme://host[:port])"),
        ("http:\n  cors: {allowedOrigins: [\"https://\"]}\n", "config: http.cors.allowedOrigins[0]: invalid origin \"https://\" (expected \"*\" or scheme://host[:port])"),
        ("shutdown: {graceSeconds: -1}\n", "config: shutdown.graceSeconds: must be ≥ 0, found -1"),
        ("metrics: {requireToken: sometimes}\n", "config: metrics.requireToken: expected true or false, found \"sometimes\""),
        ("listen: \"localhost\"\n", "config: listen: invalid address \"localhost\" (expected HOST:PORT, e.g. 127.0.0.1:6465 or [::1]:6465)"),
        ("listen: \"127.0.0.1:70000\"\n", "config: listen: invalid address \"127.0.0.1:70000\" (expected HOST:PORT, e.g. 127.0.0.1:6465 or [::1]:6465)"),
        ("storage: {kind: postgres}\n", "config: storage.url: required when storage.kind is postgres (or set MINKD_DATABASE_URL, --database-url)"),
        ("storage: {kind: mongo}\n", "config: storage.kind: unknown storage kind \"mongo\" (expected sqlite, postgres, memory)"),
        ("storage: {pool: 0}\n", "config: storage.pool: must be positive, found 0"),
        ("storage: {dataDir: \"\"}\n", "config: storage.dataDir: must not be empty"),
        // Left empty, not "no URL" (which ran a deployment meant for PostgreSQL on SQLite).
        ("storage:\n  url:\n", "config: storage.url: expected a string, found null"),
        ("storage: {url: \"\"}\n", "config: storage.url: must not be empty"),
        ("tenancy: {strategy: silo}\n", "config: tenancy.strategy: unknown tenancy strategy \"silo\" (expected shared, schema, database)"),
        ("tenancy: {schemaPrefix: \"Tenant-\"}\n", "config: tenancy.schemaPrefix: invalid schema prefix \"Tenant-\": must match ^[a-z_][a-z0-9_]{0,30}$"),
        ("tenancy: {autoCreate: 1}\n", "config: tenancy.autoCreate: expected true or false, found 1"),
        ("logging: {level: loud}\n", "config: logging.level: unknown log level \"loud\" (expected trace, debug, info, notice, warning, error, critical)"),
        ("listen: [1\n", "config: test.yaml: invalid YAML: did not find expected ',' or ']' at line 2, column 1"),
        // The line of the repeat, the one to fix (Yams marks the first occurrence).
        ("a: 1\na: 2\n", "config: test.yaml: invalid YAML: duplicate key \"a\" at line 2"),
        ("listen: \"127.0.0.1:1\"\nstorage:\n  pool: 3\n\nlisten: \"127.0.0.1:2\"\n", "config: test.yaml: invalid YAML: duplicate key \"listen\" at line 5"),
        ("storage:\n  pool: 3\n  kind: sqlite\n  pool: 4\n", "config: test.yaml: invalid YAML: duplicate key \"pool\" at line 4"),
        ("- 1\n- 2\n", "config: (top level): expected a mapping, found a list"),
    ])
    func rejectsBadValues(_ yaml: String, _ message: String) {
        #expect(parseError(yaml) == message)
    }

    static let hash = hashToken("token")

    @Test(arguments: [
        ("roles: [read, rw]", "config: auth.tokens[1].roles: unknown role \"rw\" (expected read, write or admin)"),
        ("roles: []", "config: auth.tokens[1].roles: at least one role is required"),
        ("sha256: \"abc\"", "config: auth.tokens[1].sha256: must be 64 hex characters (the output of `minkd hash-token`), found 3 characters"),
        ("sha256: \"\(String(repeating: "g", count: 64))\"", "config: auth.tokens[1].sha256: must be 64 hex characters (the output of `minkd hash-token`), found a character that is not a hex digit"),
        ("tenant: \"Acme\"", "config: auth.tokens[1].tenant: invalid tenant \"Acme\": must match ^[a-z0-9][a-z0-9_-]{0,62}$ or be \"*\""),
        ("tenant: \"-x\"", "config: auth.tokens[1].tenant: invalid tenant \"-x\": must match ^[a-z0-9][a-z0-9_-]{0,62}$ or be \"*\""),
        ("token: \"plaintext\"", "config: auth.tokens[1].token: unknown key"),
        ("name: \"first\"", "config: auth.tokens[1].name: \"first\" is already the name of auth.tokens[0]"),
    ])
    func rejectsBadTokens(_ change: String, _ message: String) {
        let key = change.split(separator: ":")[0]
        var second = [
            "name": "name: \"second\"", "sha256": "sha256: \"\(Self.hash.uppercased())\"",
            "tenant": "tenant: \"*\"", "roles": "roles: [admin]",
        ]
        second[String(key)] = change
        let yaml = """
            auth:
              enabled: true
              tokens:
                - {name: "first", sha256: "\(hashToken("other"))", tenant: "acme", roles: [read]}
                - {\(second.values.sorted().joined(separator: ", "))}
            """
        #expect(parseError(yaml) == message)
    }

    @Test func tokenRequiredKeysAndSameHash() {
        #expect(parseError("auth: {tokens: [{name: a, tenant: acme, roles: [read]}]}") == "config: auth.tokens[0].sha256: required")
        #expect(parseError("auth: {tokens: [{sha256: \"\(Self.hash)\", tenant: acme, roles: [read]}]}") == "config: auth.tokens[0].name: required")
        #expect(parseError("auth: {tokens: [{name: a, sha256: \"\(Self.hash)\", roles: [read]}]}") == "config: auth.tokens[0].tenant: required (a tenant ID or \"*\")")
        #expect(parseError("""
            auth: {tokens: [{name: a, sha256: "\(Self.hash)", tenant: x, roles: read},
                            {name: b, sha256: "\(Self.hash)", tenant: y, roles: [read]}]}
            """) == "config: auth.tokens[1].sha256: the same hash as auth.tokens[0]")
    }

    /// Integers past what arithmetic on them can take are refused with the key named (a
    /// `graceSeconds` of 2^63 − 1 crashed the process at start, one of 2^62 at SIGTERM).
    @Test func hugeIntegersAreRefused() throws {
        let max = "9223372036854775807"
        for (yaml, key, limit) in [
            ("shutdown: {graceSeconds: \(max)}", "shutdown.graceSeconds", "315360000"),
            ("shutdown: {graceSeconds: 4611686018427387898}", "shutdown.graceSeconds", "315360000"),
            ("retention: {scavengeIntervalSeconds: \(max)}", "retention.scavengeIntervalSeconds", "315360000"),
            ("storage: {timeoutSeconds: \(max)}", "storage.timeoutSeconds", "315360000"),
            ("http: {idleTimeoutSeconds: 315360001}", "http.idleTimeoutSeconds", "315360000"),
            ("http: {sseKeepaliveSeconds: \(max)}", "http.sseKeepaliveSeconds", "315360000"),
            ("limits: {maxBodyBytes: \(max)}", "limits.maxBodyBytes", "9007199254740991"),
        ] {
            let message = parseError(yaml)
            #expect(message?.hasPrefix("config: \(key): must be at most \(limit)") == true, "\(yaml): \(message ?? "accepted")")
        }
        let ok = try MinkdConfiguration.parse(yaml: "shutdown: {graceSeconds: 315360000}\nretention: {scavengeIntervalSeconds: 315360000}")
        #expect(ok.shutdown.graceSeconds == 315_360_000)
        #expect(throws: ConfigError.self) {
            try MinkdConfiguration.load(file: nil, environment: [EnvironmentKey.graceSeconds: max], overrides: FlagOverrides())
        }
    }

    /// An alias bomb (nine levels of ten aliases: a billion nodes once expanded) is refused at
    /// once instead of hanging the loader (and `check-config`, and a SIGHUP reload).
    @Test func aliasBombsAreRefused() throws {
        var yaml = "x:\n  f0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
        for level in 1...9 {
            yaml += "  f\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        let start = ContinuousClock.now
        let message = parseError(yaml)
        #expect(message?.contains("more than 100000 YAML nodes once aliases are expanded") == true, "\(message ?? "accepted")")
        #expect(ContinuousClock.now - start < .seconds(5))
        // Ordinary aliases still work.
        let shared = try MinkdConfiguration.parse(yaml: "limits: &l {maxBodyBytes: 1000}\nhttp: {gzipMinBytes: 10}")
        #expect(shared.limits.maxBodyBytes == 1000)
    }

    @Test func rateLimitsParse() throws {
        let config = try MinkdConfiguration.parse(yaml: """
            auth: {tokens: [{name: a, sha256: "\(Self.hash)", tenant: acme, roles: read, rateLimit: {perSecond: 500, burst: 1000}},
                            {name: b, sha256: "\(hashToken("b"))", tenant: acme, roles: read, rateLimit: {perSecond: 0.5, burst: 1}},
                            {name: c, sha256: "\(hashToken("c"))", tenant: acme, roles: read}]}
            """)
        #expect(config.auth.tokens.map(\.rateLimit) == [.init(perSecond: 500, burst: 1000), .init(perSecond: 0.5, burst: 1), nil])
        // What `check-config` prints parses back to the same limits.
        let again = try MinkdConfiguration.parse(yaml: config.yaml(redactingSecrets: false))
        #expect(again.auth.tokens.map(\.rateLimit) == config.auth.tokens.map(\.rateLimit))
        func error(_ limit: String) -> String? {
            parseError("auth: {tokens: [{name: a, sha256: \"\(Self.hash)\", tenant: acme, roles: read, rateLimit: \(limit)}]}")
        }
        let range = "must be a number of requests per second from 0.000001 to 1000000000"
        #expect(error("{perSecond: 0, burst: 1}") == "config: auth.tokens[0].rateLimit.perSecond: \(range), found \"0\"")
        #expect(error("{perSecond: fast, burst: 1}") == "config: auth.tokens[0].rateLimit.perSecond: \(range), found \"fast\"")
        // Written as a number: quoted, it is a string (as for integers elsewhere).
        #expect(error("{perSecond: \"5\", burst: 1}") == "config: auth.tokens[0].rateLimit.perSecond: \(range), found \"5\"")
        #expect(error("{perSecond: 2.5e1, burst: 1}") == nil)
        // Extremes whose interval would not fit in nanoseconds (they trapped at start-up).
        #expect(error("{perSecond: 1e-300, burst: 1}") == "config: auth.tokens[0].rateLimit.perSecond: \(range), found \"1e-300\"")
        #expect(error("{perSecond: 1e300, burst: 1}") == "config: auth.tokens[0].rateLimit.perSecond: \(range), found \"1e300\"")
        #expect(error("{perSecond: 1, burst: 9223372036854775807}") == "config: auth.tokens[0].rateLimit.burst: must be at most 9007199254740991, found 9223372036854775807")
        #expect(error("{perSecond: 1, burst: 0}") == "config: auth.tokens[0].rateLimit.burst: must be positive, found 0")
        #expect(error("{perSecond: 1}") == "config: auth.tokens[0].rateLimit.burst: required")
        #expect(error("{burst: 1}") == "config: auth.tokens[0].rateLimit.perSecond: required")
        #expect(error("{perSecond: 1, burst: 1, window: 2}") == "config: auth.tokens[0].rateLimit.window: unknown key")
    }

    @Test func hashesAreStoredLowercase() throws {
        let config = try MinkdConfiguration.parse(yaml: "auth: {tokens: [{name: a, sha256: \"\(Self.hash.uppercased())\", tenant: acme, roles: read}]}")
        #expect(config.auth.tokens[0].sha256 == Self.hash)
        #expect(config.auth.token(matching: "token")?.roles == [.read])
    }
}

@Suite(.timeLimit(.minutes(3))) struct ListenTests {
    @Test(arguments: [
        ("127.0.0.1:6465", "127.0.0.1", 6465), ("[::1]:80", "::1", 80), ("0.0.0.0:0", "0.0.0.0", 0),
        ("localhost:8080", "localhost", 8080), ("[fe80::1]:65535", "fe80::1", 65535), ("my-host.internal:1", "my-host.internal", 1),
    ])
    func parses(_ text: String, _ host: String, _ port: Int) throws {
        let address = try ListenAddress(parsing: text)
        #expect(address == ListenAddress(host: host, port: port))
        #expect(address.description == text)
    }

    @Test(arguments: ["", ":6465", "127.0.0.1", "127.0.0.1:", "127.0.0.1:x", "127.0.0.1:65536", "::1:80", "[::1]80", "[::1]", "a b:1", "127.0.0.1:-1", "[zz]:1"])
    func rejects(_ text: String) {
        #expect(throws: ConfigError.self) { try ListenAddress(parsing: text) }
    }

    @Test func loopback() {
        for host in ["127.0.0.1", "127.1.2.3", "localhost", "LOCALHOST", "::1", "[::1]", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "a.localhost"] {
            #expect(ListenAddress.isLoopback(host: host), "\(host)")
        }
        for host in ["0.0.0.0", "10.0.0.1", "128.0.0.1", "::", "1::", "::2", "example.com", "127.0.0.1.example.com", "", "fe80::1"] {
            #expect(!ListenAddress.isLoopback(host: host), "\(host)")
        }
    }

    @Test func serveRefusesOpenListenWithoutAuth() throws {
        var config = MinkdConfiguration()
        try config.validateForServe(insecure: false)
        config.listen = ListenAddress(host: "0.0.0.0", port: 6465)
        #expect(configError { try config.validateForServe(insecure: false) } ==
            "config: listen: refusing to listen on non-loopback address 0.0.0.0:6465 with auth disabled (enable auth or pass --insecure)")
        try config.validateForServe(insecure: true)
        config.auth.enabled = true
        try config.validateForServe(insecure: false)
    }
}

@Suite(.timeLimit(.minutes(3))) struct RedactionTests {
    @Test func hidesSecretsAndRoundTrips() throws {
        let path = try temporaryFile("""
            storage: {kind: postgres, url: "postgres://minkd:s3cret@db:5432/minkd?sslmode=require", pool: 3}
            auth:
              enabled: true
              tokens:
                - {name: "ops \\"main\\"", sha256: "\(hashToken("t"))", tenant: "*", roles: [admin, read]}
            http: {cors: {allowedOrigins: ["https://a.example"]}}
            logging: {format: json}
            projections:
              - name: totals
                mode: inline
                indexes: [count]
                handlers:
                  - event: "Any\\u00e9"
                    id: "all"
                    set: {label: "$$.literal", nested: {a: [1, 2.5, true, null, "$.metadata.custom.k"]}}
                    increment: {count: 1}
                    unset: [old]
            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let config = try MinkdConfiguration.load(file: path, environment: [:], overrides: .none)
        let redacted = config.redactedDescription()
        #expect(!redacted.contains("s3cret"))
        #expect(!redacted.contains(hashToken("t")))
        #expect(redacted.contains(#"url: "postgres://minkd:<redacted>@db:5432/minkd?sslmode=require""#))
        #expect(redacted.contains(#"sha256: "<redacted>""#))
        #expect(redacted.contains("roles: [read, admin]"))
        #expect(redacted.hasPrefix("listen: \"127.0.0.1:6465\"\nstorage:\n  kind: postgres\n"))

        var reloaded = try MinkdConfiguration.parse(yaml: config.yaml(redactingSecrets: false))
        reloaded.configFile = config.configFile
        #expect(reloaded == config)
        #expect(reloaded.projections[0].handlers[0].set[0].value == .string("$.literal"))
        #expect(try MinkdConfiguration.parse(yaml: MinkdConfiguration().yaml(redactingSecrets: false)) == MinkdConfiguration())
    }

    @Test(arguments: [
        ("postgres://u:p@h/db", "postgres://u:<redacted>@h/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgres://h/db?user=u&password=p&sslmode=x", "postgres://h/db?user=u&password=<redacted>&sslmode=x"),
        ("host=h user=u password=p dbname=d", "host=h user=u password=<redacted> dbname=d"),
        ("postgres://u:p:q@h/db", "postgres://u:<redacted>@h/db"),
        // Both places in one URL, the key in any case, several, and key/value spacing and quoting.
        ("postgresql://u:pw@h/db?password=other", "postgresql://u:<redacted>@h/db?password=<redacted>"),
        ("postgres://h/db?PASSWORD=a&sslmode=x&password=b", "postgres://h/db?PASSWORD=<redacted>&sslmode=x&password=<redacted>"),
        ("host=h password = 'a b\\' c' user=u", "host=h password=<redacted> user=u"),
        ("host=h\tpassword=kv\tdbname=d", "host=h\tpassword=<redacted>\tdbname=d"),
        ("password=p host=h", "password=<redacted> host=h"),
        ("host=h mypassword=x dbname=d", "host=h mypassword=x dbname=d"),
        ("postgres://u@127.0.0.1:1/db?password=qsecret", "postgres://u@127.0.0.1:1/db?password=<redacted>"),
    ])
    func redactsPasswords(_ url: String, _ expected: String) {
        #expect(MinkdConfiguration.redactPassword(in: url) == expected)
    }

    /// Messages that quote a URL's password (libpq's errors repeat a malformed URI or token) are
    /// scrubbed of every form of it.
    @Test func scrubsPasswordsFromMessages() {
        let url = "postgresql://x:SeCr%zzEt@127.0.0.1:1/y?password=Other%41"
        #expect(Set(MinkdConfiguration.passwords(in: url)) == ["SeCr%zzEt", "Other%41", "OtherA"])
        let message = #"invalid percent-encoded token: "SeCr%zzEt"; also OtherA and Other%41"#
        #expect(MinkdConfiguration.scrub(message, passwordsOf: url) == #"invalid percent-encoded token: "<redacted>"; also <redacted> and <redacted>"#)
        #expect(MinkdConfiguration.passwords(in: "host=h password = 'a b' user=u") .contains("a b"))
        #expect(MinkdConfiguration.passwords(in: "postgres://u@h/db").isEmpty)
    }
}
