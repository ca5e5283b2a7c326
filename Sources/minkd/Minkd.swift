import ArgumentParser
import Foundation
import Logging
import Mink
import MinkConfig
import MinkServer

@main
struct Minkd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "minkd",
        abstract: "An event store you run as a server.",
        version: MinkServer.version,
        subcommands: [Serve.self, HashToken.self, CheckConfig.self, Migrate.self, Version.self],
        defaultSubcommand: Serve.self
    )
}

/// Options shared by the commands that read the configuration.
struct ConfigOptions: ParsableArguments {
    @Option(help: "Address to listen on, HOST:PORT (default 127.0.0.1:6465).") var listen: String?
    @Option(name: .customLong("data-dir"), help: "Directory of the SQLite databases (default ./minkd-data).") var dataDir: String?
    @Option(help: "YAML configuration file.") var config: String?
    @Option(help: "Storage: sqlite, postgres or memory (default sqlite).") var storage: String?
    @Option(name: .customLong("database-url"), help: "PostgreSQL connection URL.") var databaseURL: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning or error.") var logLevel: String?
    @Option(name: .customLong("log-format"), help: "text or json (default: text on a terminal, json otherwise).") var logFormat: String?
    @Flag(help: "Allow listening on a non-loopback address with authentication disabled.") var insecure = false

    func load() throws -> MinkdConfiguration {
        try MinkdConfiguration.load(
            file: config, environment: ProcessInfo.processInfo.environment,
            overrides: FlagOverrides(
                listen: listen, dataDir: dataDir, storage: storage, databaseURL: databaseURL, logLevel: logLevel,
                logFormat: logFormat, insecure: insecure
            )
        )
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
            config = try options.load()
            try config.validateForServe(insecure: options.insecure || config.insecure)
        } catch {
            fail("\(error)")
        }
        let logger = bootstrapLogging(config)
        let storage: ServerStorage
        do {
            storage = try await ServerStorage.open(config, logger: logger)
        } catch {
            fail("minkd: cannot open storage: \(error)")
        }
        let server = MinkServer(configuration: config, storage: storage, logger: logger)
        let signals = SignalWatcher([SIGTERM, SIGINT, SIGHUP])
        do {
            try await server.start()
        } catch {
            await storage.close()
            fail("minkd: cannot start: \(error)")
        }
        logger.notice("minkd ready", metadata: [
            "address": "\(config.listen.host):\(server.port ?? config.listen.port)", "storage": "\(storage.kind)",
            "tenancy": "\(config.tenancy.strategy.rawValue)", "version": "\(MinkServer.version)",
        ])
        for await signal in signals.signals {
            if signal == SIGHUP {
                // Re-read the same file, environment and flags; only the token list is applied.
                do {
                    server.reloadTokens(from: try options.load())
                } catch {
                    logger.error("SIGHUP: the configuration could not be read again; the token list is unchanged", metadata: [
                        "error": "\(error)"
                    ])
                }
                continue
            }
            logger.notice("shutting down", metadata: ["signal": "\(signal == SIGTERM ? "SIGTERM" : "SIGINT")"])
            await server.shutdown()
            logger.notice("stopped")
            return
        }
    }
}

/// Delivers signals as an async sequence (Dispatch signal sources; default actions disabled).
///
/// `@unchecked Sendable`: `sources` is written once in `init` and only kept alive afterwards.
final class SignalWatcher: @unchecked Sendable {
    let signals: AsyncStream<Int32>
    private let sources: [any DispatchSourceSignal]

    init(_ numbers: [Int32]) {
        let (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
        signals = stream
        let queue = DispatchQueue(label: "minkd.signals")
        sources = numbers.map { n in
            signal(n, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: n, queue: queue)
            s.setEventHandler { continuation.yield(n) }
            s.resume()
            return s
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
            let config = try options.load()
            print(config.redactedDescription(), terminator: "")
        } catch {
            fail("\(error)")
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply the PostgreSQL schema, then exit.")
    @OptionGroup var options: ConfigOptions

    func run() async throws {
        var config: MinkdConfiguration
        do { config = try options.load() } catch { fail("\(error)") }
        config.storage.kind = .postgres
        let logger = bootstrapLogging(config)
        do {
            let tenants = try await ServerStorage.migratePostgres(config, logger: logger)
            print("migrations applied (\(tenants.count) tenant\(tenants.count == 1 ? "" : "s"))")
        } catch {
            fail("minkd migrate: \(error)")
        }
    }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the version.")
    func run() { print("minkd \(MinkServer.version)") }
}
