import ArgumentParser
import Foundation
import Logging
import Mink
import MinkConfig
import MinkHTTP
import MinkServer
import MinkStorageWiring
import ServiceLifecycle
import Synchronization
import UnixSignals

@main
struct Minkd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "minkd",
        abstract: "An event store you run as a server.",
        version: MinkServer.version,
        subcommands: [
            Serve.self, HashToken.self, CheckConfig.self, Migrate.self, Version.self, Healthcheck.self, Export.self, Import.self, Backup.self,
        ],
        defaultSubcommand: Serve.self
    )

    /// Parses and runs as ArgumentParser would, except that a bad command line (an unknown flag
    /// or command, a missing or invalid value) ends with one line naming it, as every other
    /// start-up error does (CONFIG.md: "one line naming the key and what is wrong"), not an
    /// error, a usage line and a hint. `--help` and `--version` print as usual.
    static func main() async {
        let command: any ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            guard exitCode(for: error) != .success else { Self.exit(withError: error) }
            let text = message(for: error).split(whereSeparator: \.isNewline).first.map(String.init) ?? "invalid command line"
            FileHandle.standardError.write(Data("config: \(text.hasPrefix("Error: ") ? String(text.dropFirst(7)) : text)\n".utf8))
            Foundation.exit(exitCode(for: error).rawValue)
        }
        do {
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                var syncCommand = command
                try syncCommand.run()
            }
        } catch {
            Self.exit(withError: error)
        }
    }
}

/// Options shared by the commands that read the configuration.
struct ConfigOptions: ParsableArguments {
    @Option(help: "Address to listen on, HOST:PORT (default 127.0.0.1:6465).") var listen: String?
    @Option(name: .customLong("data-dir"), help: "Directory of the SQLite databases (default ./minkd-data).") var dataDir: String?
    @Option(help: "YAML configuration file.") var config: String?
    @Option(help: "Storage: sqlite, postgres or memory (default sqlite; postgres when a database URL is given).") var storage: String?
    @Option(name: .customLong("database-url"), help: "PostgreSQL connection URL (selects postgres storage).") var databaseURL: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.") var logLevel: String?
    @Option(name: .customLong("log-format"), help: "text, json or auto (default auto: text on a terminal, json otherwise).") var logFormat: String?
    @Flag(help: "Allow listening on a non-loopback address with authentication disabled.") var insecure = false

    /// - Parameter probe: for `healthcheck`, which needs only the listen address: the rule that
    ///   refuses a non-loopback address without auth (`--insecure`) is not applied — a container
    ///   whose `serve` was given `--insecure` must not be reported unhealthy because its health
    ///   check was not — nor the checks of what only `serve` opens (projections, the database URL).
    /// - Parameter listens: `false` for the commands that open the storage but never listen
    ///   (`migrate`, `export`, `import`): the rule about the listen address does not apply to them
    ///   (a container's `MINKD_LISTEN=0.0.0.0:6465` refused `minkd export` with auth off).
    func load(probe: Bool = false, listens: Bool = true) throws -> MinkdConfiguration {
        let configuration = try MinkdConfiguration.load(
            file: config, environment: ProcessInfo.processInfo.environment,
            overrides: FlagOverrides(
                listen: listen, dataDir: dataDir, storage: storage, databaseURL: databaseURL, logLevel: logLevel,
                logFormat: logFormat, insecure: insecure || probe || !listens
            )
        )
        if probe { return configuration }
        // The declared projections compile here too (reserved read-model names, clashing
        // `set`/`unset`, …), so that every command refuses what `serve` refuses, with the same line.
        _ = try DeclaredProjection.compile(configuration.projections)
        try ServerStorage.checkDatabaseURL(configuration)
        return configuration
    }

    /// Fails with `message`, after the unknown-variable warnings: a misspelt variable is often
    /// why the configuration is wrong (`MINKD_DATABSE_URL`, then "storage.url: required").
    func failNamingUnknownVariables(_ message: String) -> Never {
        for warning in environmentWarnings { FileHandle.standardError.write(Data("minkd: warning: \(warning)\n".utf8)) }
        fail(message)
    }

    /// One warning per `MINKD_*` variable minkd does not read (a misspelling is otherwise silent).
    var environmentWarnings: [String] {
        MinkdConfiguration.unknownEnvironmentVariables(in: ProcessInfo.processInfo.environment).map {
            "unknown environment variable \($0) is ignored"
        }
    }
}

/// Prints one line and exits non-zero: how every start-up error ends.
func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(1)
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the server (the default command).")
    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let config: MinkdConfiguration
        do {
            // `load` validates: the same checks as `check-config`.
            config = try options.load()
        } catch {
            options.failNamingUnknownVariables("\(error)")
        }
        let logger = bootstrapLogging(config)
        // From here a stop signal is said in the log: before the service group runs (opening the
        // storage may wait for PostgreSQL), it ends the process at once with exit 0 — it used to
        // end it by the signal (exit 143, nothing logged), which systemd counts as a failure.
        let stopSignals = StopSignals(logger: logger, graceSeconds: config.shutdown.graceSeconds)
        for warning in options.environmentWarnings { logger.warning("\(warning)") }
        if !config.listen.isLoopback, !config.auth.enabled {
            // Allowed by --insecure (the load refuses it otherwise): said once, loudly, at start.
            logger.warning("listening on a non-loopback address with authentication disabled (--insecure): anyone who can reach \(config.listen) reads and writes every tenant", metadata: [
                "address": "\(config.listen)",
            ])
        }
        // Files and directories minkd creates (SQLite databases, their -wal/-shm files, the data
        // directory) hold every tenant's events: owner-only, 0600 and 0700, whatever umask the
        // service manager or shell passed down.
        umask(0o077)
        // A SIGHUP before the reloader watches for it, or after it stopped during the shutdown,
        // is ignored rather than ending the process (its default action). Dispatch's signal
        // source still receives it: on Linux it installs its own handler when it registers.
        signal(SIGHUP, SIG_IGN)
        let storage: ServerStorage
        do {
            storage = try await ServerStorage.open(config, logger: logger)
        } catch {
            fail("minkd: \(error)")
        }
        let server = MinkServer(configuration: config, storage: storage, logger: logger)
        // The server's parts (storage, tenants, projections, HTTP), then the SIGHUP reloader:
        // the group runs them all and, on SIGTERM or SIGINT, stops them from the last to the
        // first — the reloader, the listener (requests drain), the projections, the tenants'
        // hubs, storage last.
        // The one line that says minkd serves (and on which port, with `:0`): written whatever
        // `logging.level` says — `warning` hid it.
        var readyLogger = logger
        readyLogger.logLevel = min(readyLogger.logLevel, .notice)
        let ready: @Sendable (Int) -> Void = { [readyLogger] port in
            readyLogger.notice("minkd ready", metadata: [
                // An IPv6 host in brackets, as in a URL (`[::1]:6465`).
                "address": "\(config.listen.host.contains(":") ? "[\(config.listen.host)]" : config.listen.host):\(port)",
                "storage": "\(storage.kind)",
                "tenancy": "\(config.tenancy.strategy.rawValue)", "version": "\(MinkServer.version)",
            ])
        }
        var services = server.services(onReady: ready)
        services.append(.init(service: ConfigReloadService(server: server, options: options, logger: logger), serviceName: "minkd.reload"))
        // After the listener: the group stops it first, before storage closes.
        services.append(.init(service: ScavengerService(server: server), serviceName: "minkd.scavenger"))
        var groupConfiguration = ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger
        )
        // Past the HTTP grace period (and as long again for projections and storage), the group
        // is cancelled: every part then stops at once.
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(2 * config.shutdown.graceSeconds + 10)
        stopSignals.handOver()
        do {
            try await ServiceGroup(configuration: groupConfiguration).run()
        } catch {
            // Only the HTTP service throws, and only while it starts (bind, storage, projections).
            // A cause that names itself ("cannot listen on …", as documented) is not prefixed again.
            let cause = "\(error)"
            fail(cause.hasPrefix("cannot ") ? "minkd: \(cause)" : "minkd: cannot start: \(cause)")
        }
        logger.notice("stopped")
    }
}

/// Re-reads the configuration on SIGHUP (the same file, environment and flags) and applies the
/// token list; runs until the group's graceful shutdown.
struct ConfigReloadService: Service {
    let server: MinkServer
    let options: ConfigOptions
    let logger: Logger

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            do {
                try server.reloadTokens(from: try options.load())
            } catch {
                logger.error("SIGHUP: the configuration could not be applied; the token list is unchanged", metadata: [
                    "error": "\(error)"
                ])
            }
        }
    }
}

func bootstrapLogging(_ config: MinkdConfiguration) -> Logger {
    let level = Logger.Level(rawValue: config.logging.level.rawValue) ?? .info
    let json = config.logging.effectiveFormat(isTerminal: isatty(STDERR_FILENO) == 1) == .json
    LoggingSystem.bootstrap { label in
        var handler: any LogHandler = json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
    return Logger(label: "minkd")
}

struct HashToken: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash-token", abstract: "Read a token on standard input and print its SHA-256 hex for the config."
    )

    func run() throws {
        guard let line = readLine(strippingNewline: true), !line.isEmpty else { fail("hash-token: no token on standard input") }
        // One token per run: a second line (two tokens pasted, a file of them) would otherwise be
        // silently ignored and only the first hashed.
        while let more = readLine(strippingNewline: true) {
            if !more.trimmingCharacters(in: .whitespaces).isEmpty {
                fail("hash-token: standard input holds more than one line; give one token per run")
            }
        }
        // A token `Authorization: Bearer` cannot carry would work only in a URL (`access_token`),
        // never in the header: refused here rather than found out later.
        if line.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value >= 0x7F }) {
            fail("hash-token: a token may hold printable ASCII only (no space, tab, control or non-ASCII character): `Authorization: Bearer <token>` could not carry it")
        }
        print(hashToken(line))
    }
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate the configuration and print the effective one (secrets hidden)."
    )
    @OptionGroup var options: ConfigOptions

    func run() throws {
        do {
            // The same `load` (and so the same validation) as `serve`: what passes here starts.
            let config = try options.load()
            for warning in options.environmentWarnings { FileHandle.standardError.write(Data("minkd: warning: \(warning)\n".utf8)) }
            print(config.redactedDescription(), terminator: "")
        } catch {
            options.failNamingUnknownVariables("\(error)")
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply the PostgreSQL schema, then exit.")
    @OptionGroup var options: ConfigOptions

    func run() async throws {
        // The storage resolves as for `serve` (a database URL selects postgres): what `migrate`
        // prepares is what `serve` with the same flags opens.
        let config: MinkdConfiguration
        do { config = try options.load(listens: false) } catch { fail("\(error)") }
        let logger = bootstrapLogging(config)
        for warning in options.environmentWarnings { logger.warning("\(warning)") }
        do {
            let tenants = try await ServerStorage.migratePostgres(config, logger: logger)
            print("migrations applied (\(tenants.count) tenant\(tenants.count == 1 ? "" : "s"))")
        } catch let e as MinkError where e.code == .validationFailed {
            // A usage problem (not PostgreSQL): its sentence, without the error code in front.
            fail(e.message)
        } catch {
            fail("minkd migrate: \(error)")
        }
    }
}

/// `GET /healthz` on the configured listen address (a wildcard address is asked on loopback);
/// exit 0 on `200`. For container `HEALTHCHECK`s in an image without curl.
struct Healthcheck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask a running minkd for /healthz (exit 0 when healthy); for container health checks."
    )
    @OptionGroup var options: ConfigOptions
    @Option(help: "Seconds to wait for the answer (1 to 315360000).") var timeout: Int = 3

    func validate() throws {
        guard timeout >= 1, timeout <= ConfigLimits.maxSeconds else {
            throw ValidationError("--timeout must be from 1 to \(ConfigLimits.maxSeconds) seconds, not \(timeout)")
        }
    }

    func run() async throws {
        let config: MinkdConfiguration
        do { config = try options.load(probe: true) } catch { fail("\(error)") }
        var host = config.listen.host
        if host == "0.0.0.0" { host = "127.0.0.1" }
        if host == "::" { host = "::1" }
        let client = HTTPClient(configuration: HTTPClientConfiguration(
            connectTimeout: .seconds(timeout), readTimeout: .seconds(timeout)
        ))
        defer { client.shutdown() }
        do {
            let response = try await client.execute(HTTPClientRequest(host: host, port: config.listen.port, target: "/healthz"))
            guard response.status == 200 else { fail("minkd healthcheck: /healthz answered \(response.status)") }
            print("ok")
        } catch {
            fail("minkd healthcheck: \(host):\(config.listen.port): \(error)")
        }
    }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the version.")
    func run() { print("minkd \(MinkServer.version)") }
}

/// SIGTERM and SIGINT from the start of `serve`: before ``handOver()`` (the service group not yet
/// running) a line and exit 0; after it, a line saying the graceful stop began (the service group
/// stops the server) — nothing was logged between the signal and `stopped`.
final class StopSignals: @unchecked Sendable {
    // `@unchecked`: `sources` is written once in `init`; `handedOver` is atomic.
    private var sources: [any DispatchSourceSignal] = []
    private let handedOver = Atomic<Bool>(false)

    init(logger: Logger, graceSeconds: Int) {
        for (number, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
            // Dispatch delivers a signal to its sources only when its default action is off.
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in
                if self.handedOver.load(ordering: .acquiring) {
                    logger.notice("stopping: \(name) received; draining requests", metadata: ["graceSeconds": "\(graceSeconds)"])
                } else {
                    logger.notice("stop requested during start-up (\(name)): exiting before serving")
                    exit(0)
                }
            }
            source.resume()
            sources.append(source)
        }
    }

    /// The service group handles the signals from now on (this only logs them).
    func handOver() { handedOver.store(true, ordering: .releasing) }
}
