import Foundation
import Mink
import Yams

extension MinkdConfiguration {
    /// Builds the effective configuration: defaults, then the YAML file, then
    /// `MINKD_*` environment variables, then flags (each overriding the one before).
    ///
    /// - Parameters:
    ///   - file: the `--config` path; when nil, `MINKD_CONFIG` is used; when both
    ///     are absent no file is read.
    ///   - environment: the process environment (`ProcessInfo.processInfo.environment`).
    ///   - overrides: the command-line flags.
    /// - Throws: `ConfigError` naming the key, variable or flag: an unreadable file,
    ///   invalid YAML, an unknown key, a wrong type, an out-of-range number, a bad
    ///   listen address, token or tenant, a postgres storage without URL, a URL with an
    ///   explicit `sqlite`/`memory` kind, an invalid projection, or anything ``validate()``
    ///   refuses.
    public static func load(file: String?, environment: [String: String], overrides: FlagOverrides) throws -> MinkdConfiguration {
        var config = MinkdConfiguration()
        func env(_ key: String) -> String? {
            guard let value = environment[key], !value.isEmpty else { return nil }
            return value
        }
        if let path = file ?? env(EnvironmentKey.config) {
            // `--config ""` (an unset shell variable, say): Foundation's answer was "The operation
            // could not be completed. (NSCocoaErrorDomain error 256.)".
            if path.isEmpty { throw ConfigError(keyPath: "--config", message: "the path is empty: give a YAML file, or leave --config out") }
            let text: String
            do {
                // Read as bytes first: a directory and text that is not UTF-8 each get a plain
                // reason rather than Foundation's domain and code.
                var isDirectory: ObjCBool = false
                if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
                    throw ConfigError(keyPath: path, message: "cannot read the config file (it is a directory)")
                }
                let data = try Self.readConfigFile(path)
                guard let decoded = String(data: data, encoding: .utf8) else {
                    throw ConfigError(keyPath: path, message: "cannot read the config file (it is not UTF-8 text)")
                }
                text = decoded
            } catch let error as ConfigError {
                throw error
            } catch {
                throw ConfigError(keyPath: path, message: "cannot read the config file (\(Self.reason(error)))")
            }
            try config.apply(yaml: text, source: path)
            config.configFile = path
        }
        try config.applyEnvironment(env)
        try config.applyFlags(overrides)
        try config.resolveStorageKind()
        try config.validate()
        return config
    }

    /// The `MINKD_*` variables in `environment` that minkd does not read, each with the known
    /// name it most likely meant: `MINKD_DATABSE_URL (did you mean MINKD_DATABASE_URL?)`.
    ///
    /// Why: a misspelt variable is otherwise ignored silently, and the default it leaves in
    /// place (SQLite in the working directory, say) looks like a working start. Kubernetes'
    /// service links (`MINKD_PORT`, `MINKD_SERVICE_HOST`, `MINKD_PORT_6465_TCP…`, injected for a
    /// Service named `minkd`) are not ours and not reported.
    public static func unknownEnvironmentVariables(in environment: [String: String]) -> [String] {
        let known = Set(EnvironmentKey.all)
        return environment.keys.sorted().compactMap { name -> String? in
            guard name.hasPrefix("MINKD_"), !known.contains(name) else { return nil }
            if name == "MINKD_PORT" || name.hasPrefix("MINKD_PORT_") || name.hasPrefix("MINKD_SERVICE_") { return nil }
            let nearest = EnvironmentKey.all.min { editDistance(name, $0) < editDistance(name, $1) }
            if let nearest, editDistance(name, nearest) <= 3 { return "\(name) (did you mean \(nearest)?)" }
            return name
        }
    }

    /// Levenshtein distance over bytes (names are ASCII).
    private static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8), b = Array(b.utf8)
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }

    /// Parses YAML text alone (no environment, no flags) over the defaults.
    /// - Parameter source: the file name used in YAML syntax errors.
    /// - Throws: `ConfigError`.
    public static func parse(yaml: String, source: String = "config") throws -> MinkdConfiguration {
        var config = MinkdConfiguration()
        try config.apply(yaml: yaml, source: source)
        try config.resolveStorageKind()
        try config.validate()
        return config
    }

    /// The file's bytes, read with `open`/`read` until its end: a pipe (`--config <(…)`), a FIFO
    /// or `/dev/null` too, which Foundation's `Data(contentsOf:)` refused as "Permission denied"
    /// (a black-box audit, session 23). At most 16 MiB (`/dev/zero` has no end).
    static func readConfigFile(_ path: String) throws -> Data {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ConfigError(keyPath: path, message: "cannot read the config file (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        let limit = 16 << 20
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ConfigError(keyPath: path, message: "cannot read the config file (\(String(cString: strerror(errno))))")
            }
            if n == 0 { return data }
            data.append(contentsOf: buffer[..<n])
            if data.count > limit { throw ConfigError(keyPath: path, message: "cannot read the config file (over 16 MiB)") }
        }
    }

    private static func reason(_ error: any Error) -> String {
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain,
           let code = POSIXErrorCode(rawValue: Int32(underlying.code))
        {
            return String(cString: strerror(code.rawValue))
        }
        if nsError.domain == NSCocoaErrorDomain && nsError.code == NSFileReadNoSuchFileError { return "No such file or directory" }
        if nsError.domain == NSCocoaErrorDomain && nsError.code == NSFileReadNoPermissionError { return "Permission denied" }
        return nsError.localizedDescription
    }

    // MARK: - File

    /// The most YAML nodes a configuration may hold, aliases expanded.
    static let maxNodes = 100_000

    /// The nodes of `node`, aliases expanded, counted up to a little past `budget` (then it stops).
    static func nodeCount(_ node: Node, budget: Int) -> Int {
        var count = 0
        var stack = [node]
        while let n = stack.popLast() {
            count += 1
            if count > budget { return count }
            switch n {
            case .scalar, .alias: break
            case .sequence(let s): stack.append(contentsOf: s)
            case .mapping(let m):
                for (k, v) in m {
                    stack.append(k)
                    stack.append(v)
                }
            }
        }
        return count
    }

    mutating func apply(yaml: String, source: String) throws {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw ConfigError(keyPath: source, message: "invalid YAML: \(Self.describe(error))")
        }
        guard let root else { return }
        if case .scalar(let scalar) = root, scalar.string.isEmpty || root.tagName == .null { return }
        // Aliases share their anchor's node: nine levels of ten aliases each are a billion nodes
        // to walk (an "alias bomb"), which hung the loader. No configuration comes near this.
        guard Self.nodeCount(root, budget: Self.maxNodes) <= Self.maxNodes else {
            throw ConfigError(keyPath: source, message: "more than \(Self.maxNodes) YAML nodes once aliases are expanded")
        }
        let document = ConfigNode(root, path: "")
        for (key, node) in try document.mapping(allowing: [
            "listen", "storage", "tenancy", "auth", "limits", "http", "shutdown", "metrics", "logging", "projections",
            "retention",
        ]) {
            switch key {
            case "listen": listen = try ListenAddress(parsing: node.string(), keyPath: node.path)
            case "storage": try applyStorage(node)
            case "tenancy": try applyTenancy(node)
            case "auth": try applyAuth(node)
            case "limits": try applyLimits(node)
            case "http": try applyHTTP(node)
            case "retention":
                for (key, node) in try node.mapping(allowing: ["scavengeIntervalSeconds"]) where key == "scavengeIntervalSeconds" {
                    retention.scavengeIntervalSeconds = try node.seconds(atLeast: 1)
                }
            case "shutdown":
                for (key, node) in try node.mapping(allowing: ["graceSeconds"]) where key == "graceSeconds" {
                    shutdown.graceSeconds = try node.seconds(atLeast: 0)
                }
            case "metrics":
                for (key, node) in try node.mapping(allowing: ["requireToken"]) where key == "requireToken" {
                    metrics.requireToken = try node.bool()
                }
            case "logging":
                for (key, node) in try node.mapping(allowing: ["level", "format"]) {
                    if key == "level" { logging.level = try Self.logLevel(node.string(), keyPath: node.path) }
                    if key == "format" { logging.format = try Self.logFormat(node.string(), keyPath: node.path, allowAuto: true) }
                }
            case "projections": projections = try ProjectionParser.parse(node)
            default: break
            }
        }
    }

    private static func describe(_ error: YamlError) -> String {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return "\(problem) at line \(mark.line), column \(mark.column)"
        case .duplicatedKeysInMapping(let duplicates, let context):
            // Yams marks the first occurrence; the line to fix is the repeat: the next line that
            // starts with the same key at the same indentation.
            var line = context.mark.line
            if let key = duplicates.first {
                let lines = context.text.split(separator: "\n", omittingEmptySubsequences: false)
                let indent = max(context.mark.column - 1, 0)
                for n in context.mark.line..<lines.count {  // 0-based index of the line after the first
                    let text = lines[n]
                    let body = text.drop { $0 == " " }
                    guard text.count - body.count == indent else { continue }
                    if body.hasPrefix("\(key):") || body.hasPrefix("\"\(key)\":") || body.hasPrefix("'\(key)':") {
                        line = n + 1
                        break
                    }
                }
            }
            return "duplicate key \(duplicates.map { "\"\($0)\"" }.joined(separator: ", ")) at line \(line)"
        default:
            return String(describing: error).split(whereSeparator: \.isNewline).first.map(String.init) ?? "unreadable"
        }
    }

    private mutating func applyStorage(_ node: ConfigNode) throws {
        for (key, node) in try node.mapping(allowing: ["kind", "dataDir", "url", "pool", "timeoutSeconds"]) {
            switch key {
            case "kind":
                storage.kind = try Self.storageKind(node.string(), keyPath: node.path)
                storage.kindSource = node.path
            case "dataDir": storage.dataDir = try node.nonEmptyString()
            case "url":
                // Left empty it is an error like any other single value: read as "no URL", a
                // deployment meant for PostgreSQL ran on SQLite without a word (a black-box audit).
                storage.url = try node.nonEmptyString()
                storage.urlSource = node.path
            case "pool": storage.pool = try node.int(atLeast: 1)
            case "timeoutSeconds": storage.timeoutSeconds = try node.seconds(atLeast: 1)
            default: break
            }
        }
    }

    private mutating func applyTenancy(_ node: ConfigNode) throws {
        for (key, node) in try node.mapping(allowing: ["strategy", "schemaPrefix", "autoCreate"]) {
            switch key {
            case "strategy": tenancy.strategy = try Self.strategy(node.string(), keyPath: node.path)
            case "schemaPrefix":
                let prefix = try node.string()
                guard Self.isSchemaPrefix(prefix) else {
                    throw ConfigError(keyPath: node.path, message: "invalid schema prefix \"\(prefix)\": must match ^[a-z_][a-z0-9_]{0,30}$")
                }
                tenancy.schemaPrefix = prefix
            case "autoCreate": tenancy.autoCreate = try node.bool()
            default: break
            }
        }
    }

    private mutating func applyAuth(_ node: ConfigNode) throws {
        for (key, node) in try node.mapping(allowing: ["enabled", "tokens"]) {
            switch key {
            case "enabled": auth.enabled = try node.bool()
            case "tokens":
                auth.tokens = []
                for tokenNode in try node.sequence() {
                    let token = try Self.token(tokenNode)
                    if let earlier = auth.tokens.firstIndex(where: { $0.name == token.name }) {
                        throw ConfigError(keyPath: "\(tokenNode.path).name", message: "\"\(token.name)\" is already the name of \(node.path)[\(earlier)]")
                    }
                    if let earlier = auth.tokens.firstIndex(where: { $0.sha256 == token.sha256 }) {
                        throw ConfigError(keyPath: "\(tokenNode.path).sha256", message: "the same hash as \(node.path)[\(earlier)]")
                    }
                    auth.tokens.append(token)
                }
            default: break
            }
        }
    }

    private static func token(_ node: ConfigNode) throws -> Token {
        var name: String?, sha256: String?, tenant: String?, roles: Set<Token.Role>?, rateLimit: Token.RateLimit?
        for (key, node) in try node.mapping(allowing: ["name", "sha256", "tenant", "roles", "rateLimit"]) {
            switch key {
            case "name": name = try node.nonEmptyString()
            case "sha256":
                let hash = try node.string()
                guard hash.utf8.count == 64, hash.allSatisfy(\.isHexDigit) else {
                    let found = hash.utf8.count == 64 ? "found a character that is not a hex digit" : "found \(hash.utf8.count) characters"
                    throw ConfigError(keyPath: node.path, message: "must be 64 hex characters (the output of `minkd hash-token`), \(found)")
                }
                sha256 = hash.lowercased()
            case "tenant":
                let value = try node.string()
                guard value == "*" || TenantID.isValid(value) else {
                    throw ConfigError(keyPath: node.path, message: "invalid tenant \"\(value)\": must match ^[a-z0-9][a-z0-9_-]{0,62}$ or be \"*\"")
                }
                tenant = value
            case "roles":
                var set = Set<Token.Role>()
                for roleNode in try node.sequence(orScalar: true) {
                    let text = try roleNode.string()
                    guard let role = Token.Role(rawValue: text) else {
                        throw ConfigError(keyPath: node.path, message: "unknown role \"\(text)\" (expected read, write or admin)")
                    }
                    set.insert(role)
                }
                guard !set.isEmpty else { throw ConfigError(keyPath: node.path, message: "at least one role is required") }
                roles = set
            case "rateLimit": rateLimit = try Self.rateLimit(node)
            default: break
            }
        }
        guard let name else { throw ConfigError(keyPath: "\(node.path).name", message: "required") }
        guard let sha256 else { throw ConfigError(keyPath: "\(node.path).sha256", message: "required") }
        guard let tenant else { throw ConfigError(keyPath: "\(node.path).tenant", message: "required (a tenant ID or \"*\")") }
        guard let roles else { throw ConfigError(keyPath: "\(node.path).roles", message: "required") }
        return Token(name: name, sha256: sha256, tenant: tenant, roles: roles, rateLimit: rateLimit)
    }

    /// `rateLimit: {perSecond, burst}`: both required; `perSecond` a positive number, `burst` an
    /// integer ≥ 1.
    private static func rateLimit(_ node: ConfigNode) throws -> Token.RateLimit {
        var perSecond: Double?, burst: Int?
        for (key, node) in try node.mapping(allowing: ["perSecond", "burst"]) {
            switch key {
            case "perSecond":
                let text = try node.string()
                // Bounded so that the interval between requests fits in nanoseconds. Written as a
                // number: a quoted "5" is refused, as quoted integers are elsewhere.
                guard node.isNumber, let value = Double(text), value.isFinite, value >= 0.000001, value <= 1_000_000_000 else {
                    throw ConfigError(
                        keyPath: node.path,
                        message: "must be a number of requests per second from 0.000001 to 1000000000, found \"\(text)\"")
                }
                perSecond = value
            case "burst": burst = try node.int(atLeast: 1)
            default: break
            }
        }
        guard let perSecond else { throw ConfigError(keyPath: "\(node.path).perSecond", message: "required") }
        guard let burst else { throw ConfigError(keyPath: "\(node.path).burst", message: "required") }
        return Token.RateLimit(perSecond: perSecond, burst: burst)
    }

    private mutating func applyLimits(_ node: ConfigNode) throws {
        for (key, node) in try node.mapping(allowing: [
            "maxBodyBytes", "maxEventsPerAppend", "maxEventBytes", "maxConnections", "subscriberBuffer",
            "maxRequestLineBytes", "maxHeaderBytes", "maxImportBytes",
        ]) {
            // maxImportBytes: 0 means no limit.
            let value = try node.int(atLeast: key == "maxImportBytes" ? 0 : 1)
            switch key {
            case "maxBodyBytes": limits.maxBodyBytes = value
            case "maxEventsPerAppend": limits.maxEventsPerAppend = value
            case "maxEventBytes": limits.maxEventBytes = value
            case "maxConnections": limits.maxConnections = value
            case "subscriberBuffer": limits.subscriberBuffer = value
            case "maxRequestLineBytes": limits.maxRequestLineBytes = value
            case "maxHeaderBytes": limits.maxHeaderBytes = value
            case "maxImportBytes": limits.maxImportBytes = value
            default: break
            }
        }
    }

    private mutating func applyHTTP(_ node: ConfigNode) throws {
        for (key, node) in try node.mapping(allowing: [
            "idleTimeoutSeconds", "headerTimeoutSeconds", "bodyIdleTimeoutSeconds", "bodyTimeoutSeconds", "gzipMinBytes",
            "sseKeepaliveSeconds", "cors",
        ]) {
            switch key {
            case "idleTimeoutSeconds": http.idleTimeoutSeconds = try node.seconds(atLeast: 1)
            case "headerTimeoutSeconds": http.headerTimeoutSeconds = try node.seconds(atLeast: 1)
            case "bodyIdleTimeoutSeconds": http.bodyIdleTimeoutSeconds = try node.seconds(atLeast: 1)
            case "bodyTimeoutSeconds": http.bodyTimeoutSeconds = try node.seconds(atLeast: 1)
            case "gzipMinBytes": http.gzipMinBytes = try node.int(atLeast: 0)
            case "sseKeepaliveSeconds": http.sseKeepaliveSeconds = try node.seconds(atLeast: 1)
            case "cors":
                for (key, node) in try node.mapping(allowing: ["allowedOrigins"]) where key == "allowedOrigins" {
                    http.corsAllowedOrigins = try node.sequence().map { origin in
                        let text = try origin.string()
                        guard text == "*" || Self.isOrigin(text) else {
                            throw ConfigError(keyPath: origin.path, message: "invalid origin \"\(text)\" (expected \"*\" or scheme://host[:port])")
                        }
                        return text
                    }
                }
            default: break
            }
        }
    }

    /// Whether `text` is a serialized origin as browsers send it in `Origin`: `http://` or
    /// `https://`, a host (a name, an IPv4 address or a bracketed IPv6 one), an optional port
    /// from 1 to 65535, and nothing else (no path, not even `/`, no query, no user).
    static func isOrigin(_ text: String) -> Bool {
        // Compared byte for byte with `Origin`, which browsers send lowercased and without the
        // scheme's default port: any other spelling could never match.
        guard text == text.lowercased(), !text.hasSuffix(":80") || !text.hasPrefix("http://"),
              !text.hasSuffix(":443") || !text.hasPrefix("https://")
        else { return false }
        let rest: Substring
        if text.hasPrefix("http://") { rest = text.dropFirst(7) } else if text.hasPrefix("https://") { rest = text.dropFirst(8) } else { return false }
        var host = rest, port: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return false }
            host = rest[...close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return false }
                port = after.dropFirst()
            }
            guard host.dropFirst().dropLast().allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }), host.count > 2 else { return false }
        } else {
            if let colon = rest.lastIndex(of: ":") {
                host = rest[..<colon]
                port = rest[rest.index(after: colon)...]
            }
            let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")
            guard !host.isEmpty, host.allSatisfy({ allowed.contains($0) }) else { return false }
        }
        if let port {
            guard !port.isEmpty, !port.hasPrefix("0"), port.allSatisfy(\.isASCII), port.allSatisfy(\.isNumber), let n = Int(port),
                  (1...65535).contains(n)
            else { return false }
        }
        return true
    }

    // MARK: - Environment and flags

    private mutating func applyEnvironment(_ env: (String) -> String?) throws {
        if let value = env(EnvironmentKey.listen) { listen = try ListenAddress(parsing: value, keyPath: EnvironmentKey.listen) }
        if let value = env(EnvironmentKey.dataDir) { storage.dataDir = value }
        if let value = env(EnvironmentKey.storage) {
            storage.kind = try Self.storageKind(value, keyPath: EnvironmentKey.storage)
            storage.kindSource = EnvironmentKey.storage
        }
        if let value = env(EnvironmentKey.databaseURL) {
            storage.url = value
            storage.urlSource = EnvironmentKey.databaseURL
        }
        if let value = env(EnvironmentKey.logLevel) { logging.level = try Self.logLevel(value, keyPath: EnvironmentKey.logLevel) }
        if let value = env(EnvironmentKey.logFormat) {
            logging.format = try Self.logFormat(value, keyPath: EnvironmentKey.logFormat, allowAuto: true)
        }
        if let value = env(EnvironmentKey.insecure) { insecure = try Self.boolean(value, keyPath: EnvironmentKey.insecure) }
        if let value = env(EnvironmentKey.tenancyStrategy) {
            tenancy.strategy = try Self.strategy(value, keyPath: EnvironmentKey.tenancyStrategy)
        }
        if let value = env(EnvironmentKey.authEnabled) { auth.enabled = try Self.boolean(value, keyPath: EnvironmentKey.authEnabled) }
        if let value = env(EnvironmentKey.metricsRequireToken) {
            metrics.requireToken = try Self.boolean(value, keyPath: EnvironmentKey.metricsRequireToken)
        }
        if let value = env(EnvironmentKey.graceSeconds) {
            // Plain decimal, as in the file (`010` and `+5` were read as 10 and 5 here and refused there).
            let plain = !value.isEmpty && value.allSatisfy({ $0.isASCII && $0.isNumber }) && (value == "0" || !value.hasPrefix("0"))
            guard plain, let seconds = Int(value), seconds >= 0, seconds <= ConfigLimits.maxSeconds else {
                throw ConfigError(
                    keyPath: EnvironmentKey.graceSeconds,
                    message: "expected an integer from 0 to \(ConfigLimits.maxSeconds), found \"\(value)\"")
            }
            shutdown.graceSeconds = seconds
        }
    }

    private mutating func applyFlags(_ flags: FlagOverrides) throws {
        if let value = flags.listen { listen = try ListenAddress(parsing: value, keyPath: "--listen") }
        if let value = flags.dataDir {
            guard !value.isEmpty else { throw ConfigError(keyPath: "--data-dir", message: "must not be empty") }
            storage.dataDir = value
        }
        if let value = flags.storage {
            storage.kind = try Self.storageKind(value, keyPath: "--storage")
            storage.kindSource = "--storage"
        }
        if let value = flags.databaseURL {
            guard !value.isEmpty else { throw ConfigError(keyPath: "--database-url", message: "must not be empty") }
            storage.url = value
            storage.urlSource = "--database-url"
        }
        if let value = flags.logLevel { logging.level = try Self.logLevel(value, keyPath: "--log-level") }
        if let value = flags.logFormat { logging.format = try Self.logFormat(value, keyPath: "--log-format", allowAuto: true) }
        if flags.insecure { insecure = true }
    }

    /// CONFIG.md's storage rule, the same for every command: a database URL with no kind given
    /// anywhere selects `postgres`; a URL with an explicit `sqlite` or `memory` kind is an error.
    ///
    /// Why: `minkd migrate --database-url URL` then `minkd serve --database-url URL` must reach
    /// the same database; before this rule serve ran on a local SQLite file and the operator's
    /// writes went there.
    mutating func resolveStorageKind() throws {
        guard let url = storage.url, !url.isEmpty else { return }
        guard let kindSource = storage.kindSource else {
            storage.kind = .postgres
            return
        }
        if storage.kind != .postgres {
            throw ConfigError(
                keyPath: kindSource,
                message: "storage kind \"\(storage.kind.rawValue)\" conflicts with the database URL from \(storage.urlSource ?? "storage.url") "
                    + "(a URL means postgres: drop the kind, or drop the URL to use \(storage.kind.rawValue))"
            )
        }
    }

    // MARK: - Values

    private static func storageKind(_ text: String, keyPath: String) throws -> Storage.Kind {
        try choice(text, keyPath: keyPath, what: "storage kind")
    }

    private static func strategy(_ text: String, keyPath: String) throws -> TenantStrategy {
        try choice(text, keyPath: keyPath, what: "tenancy strategy")
    }

    private static func logLevel(_ text: String, keyPath: String) throws -> Logging.Level {
        try choice(text, keyPath: keyPath, what: "log level")
    }

    private static func logFormat(_ text: String, keyPath: String, allowAuto: Bool) throws -> Logging.Format? {
        if allowAuto && text == "auto" { return nil }
        guard let format = Logging.Format(rawValue: text) else {
            let expected = (Logging.Format.allCases.map(\.rawValue) + (allowAuto ? ["auto"] : [])).joined(separator: ", ")
            throw ConfigError(keyPath: keyPath, message: "unknown log format \"\(text)\" (expected \(expected))")
        }
        return format
    }

    private static func choice<T: RawRepresentable & CaseIterable>(_ text: String, keyPath: String, what: String) throws -> T
    where T.RawValue == String {
        guard let value = T(rawValue: text) else {
            let expected = T.allCases.map(\.rawValue).joined(separator: ", ")
            throw ConfigError(keyPath: keyPath, message: "unknown \(what) \"\(text)\" (expected \(expected))")
        }
        return value
    }

    private static func boolean(_ text: String, keyPath: String) throws -> Bool {
        switch text.lowercased() {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: throw ConfigError(keyPath: keyPath, message: "expected true or false, found \"\(text)\"")
        }
    }

    private static func isSchemaPrefix(_ prefix: String) -> Bool {
        let bytes = Array(prefix.utf8)
        guard (1...31).contains(bytes.count) else { return false }
        for (index, byte) in bytes.enumerated() {
            let letter = (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || byte == UInt8(ascii: "_")
            guard letter || (index > 0 && byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) else { return false }
        }
        return true
    }
}
