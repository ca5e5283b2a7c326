import ArgumentParser
import Foundation
import Mink
import MinkConfig
import MinkServer
import MinkStorageWiring
import MinkWire

// `minkd export`, `minkd import`, `minkd backup` (CONFIG.md): moving data without a running
// server. The storage is resolved from the same flags, environment and file as `serve`.

struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a tenant's events as NDJSON (as GET /v1/admin/export), from the storage directly."
    )
    @OptionGroup var options: ConfigOptions
    @Option(help: "The tenant.") var tenant: String = TenantID.default
    @Option(help: "Only events after this global position (resumes an interrupted export).") var after: Int64 = 0
    @Option(help: "Write to this file (created 0600) instead of standard output (`-`: standard output).") var out: String?

    func run() async throws {
        let config: MinkdConfiguration
        do { config = try options.load(listens: false) } catch { fail("\(error)") }
        guard TenantID.isValid(tenant) else { fail("minkd export: --tenant: invalid tenant ID \"\(tenant)\"") }
        guard after >= 0 else { fail("minkd export: --after must be ≥ 0") }
        if config.storage.kind == .memory {
            fail("minkd export: the memory storage holds nothing outside a serving minkd; use GET /v1/admin/export on the server")
        }
        // A broken pipe (`| head`) is a write error to report, not a signal that kills silently.
        signal(SIGPIPE, SIG_IGN)
        let fd: Int32
        if let out, out != "-" {
            fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            if fd < 0 { fail("minkd export: cannot create \(out): \(String(cString: strerror(errno)))") }
        } else {
            fd = STDOUT_FILENO
        }
        let storage: ServerStorage
        do {
            storage = try await ServerStorage.openForReading(config)
        } catch is NoMinkdData {
            // A PostgreSQL database minkd never wrote: the `default` tenant has no events, and
            // nothing was created to say so.
            guard tenant == TenantID.default else {
                if let out, out != "-" { unlink(out) }
                fail("minkd export: tenant \(tenant) does not exist in this storage (it holds no minkd data)")
            }
            FileHandle.standardError.write(Data("minkd export: 0 events of tenant \(tenant)\n".utf8))
            return
        } catch {
            fail("minkd export: \(error)")
        }
        var count = 0
        do {
            let store = try EventStore(adapter: storage.events).forTenant(tenant)
            var cursor = UInt64(after)
            while true {
                let page = try await store.readAll(after: cursor, limit: 1000)
                if page.isEmpty { break }
                var w = JSONWriter(capacity: 64 * 1024)
                for e in page { NDJSON.line(e, into: &w) }
                try writeAll(fd, w.bytes)
                cursor = page.last!.globalPosition
                count += page.count
            }
            if fd != STDOUT_FILENO, fsync(fd) != 0 { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        } catch {
            await storage.close()
            fail("minkd export: \(error)")
        }
        // Nothing exported: is the tenant there at all? A misspelt `--tenant`, or a storage opened
        // with the wrong `tenancy.strategy` (its tenants live elsewhere), exported nothing and
        // exited 0 — and a move piped into `import` "succeeded" having moved nothing.
        if count == 0, let catalog = storage.events as? any TenantCatalog {
            let known = (try? await catalog.tenants()) ?? []
            if !known.contains(tenant) {
                await storage.close()
                if let out, out != "-" { unlink(out) }
                fail(
                    "minkd export: tenant \(tenant) does not exist in this storage (tenants: "
                        + (known.isEmpty ? "none" : known.prefix(10).joined(separator: ", ")) + "); "
                        + "check --tenant, and that --data-dir / --database-url and tenancy.strategy are the deployment's"
                )
            }
        }
        if fd != STDOUT_FILENO { close(fd) }
        await storage.close()
        FileHandle.standardError.write(Data("minkd export: \(count) events of tenant \(tenant)\n".utf8))
    }
}

/// Writes every byte, retrying short writes and `EINTR`.
func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, bytes.count - done) }
        if n < 0 {
            if errno == EINTR { continue }
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        done += n
    }
}

struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read NDJSON events (an export) into a tenant without events (as POST /v1/admin/import), on the storage directly."
    )
    @OptionGroup var options: ConfigOptions
    @Option(help: "The tenant.") var tenant: String = TenantID.default
    @Option(name: .customLong("in"), help: "Read this file (plain or gzip) instead of standard input (`-`: standard input).") var input: String?

    func run() async throws {
        let config: MinkdConfiguration
        do { config = try options.load(listens: false) } catch { fail("\(error)") }
        guard TenantID.isValid(tenant) else { fail("minkd import: --tenant: invalid tenant ID \"\(tenant)\"") }
        // The memory storage lives in a serving minkd only: an import into this process's own
        // memory reported its count and vanished with the process.
        if config.storage.kind == .memory {
            fail("minkd import: the memory storage holds nothing outside a serving minkd; use POST /v1/admin/import on the server")
        }
        let fd: Int32
        if let input, input != "-" {
            fd = open(input, O_RDONLY)
            if fd < 0 { fail("minkd import: cannot open \(input): \(String(cString: strerror(errno)))") }
        } else {
            fd = STDIN_FILENO
        }
        umask(0o077)
        // Locks a SQLite data directory like `serve`: a directory in use fails here, naming the owner's PID.
        let storage: ServerStorage
        do { storage = try await ServerStorage.open(config) } catch { fail("minkd import: \(error)") }
        do {
            let source = try Self.source(fd: fd, limit: config.limits.maxImportBytes, maxEventBytes: config.limits.maxEventBytes)
            let store = try EventStore(adapter: storage.events).forTenant(tenant)
            let summary = try await store.importEvents(from: source)
            // Listed like a tenant created by its first write.
            if let catalog = storage.events as? any TenantCatalog { _ = try await catalog.createTenant(tenant) }
            await storage.close()
            print(String(decoding: ImportResultBody(events: summary.events, streams: summary.streams, head: Int64(summary.head)).jsonBytes(), as: UTF8.self))
        } catch {
            await storage.close()
            fail("minkd import: \(error)")
        }
    }

    /// A source over `fd` that recognises gzip input by its magic bytes.
    static func source(fd: Int32, limit: Int, maxEventBytes: Int) throws -> NDJSONImportSource {
        func readChunk() throws -> [UInt8] {
            var buffer = [UInt8](repeating: 0, count: 256 * 1024)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
                }
                buffer.removeLast(buffer.count - n)
                return buffer
            }
        }
        var first = try readChunk()
        while first.count == 1 {
            // A pipe may deliver one byte first: the magic number needs two.
            let more = try readChunk()
            if more.isEmpty { break }
            first += more
        }
        let gzip = first.count >= 2 && first[0] == 0x1F && first[1] == 0x8B
        var pending: [UInt8]? = first
        return try NDJSONImportSource(gzip: gzip, limit: limit, maxEventBytes: maxEventBytes) {
            if let p = pending {
                pending = nil
                return p
            }
            return try readChunk()
        }
    }
}

struct Backup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy a SQLite data directory with SQLite's online backup API; safe while minkd serves it."
    )
    @Option(name: .customLong("data-dir"), help: "The data directory to back up.") var dataDir: String
    @Option(help: "The directory to create the copy in (new or empty).") var out: String

    func run() async throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dataDir, isDirectory: &isDirectory), isDirectory.boolValue else {
            fail("minkd backup: \(dataDir): no such data directory")
        }
        do {
            let files = try ServerStorage.backupSQLite(directory: dataDir, to: out)
            for f in files { print("\(f.name): \(f.pages) pages") }
        } catch let e as MinkError {
            fail("minkd backup: \(e.message)")
        } catch let e as CocoaError {
            // A file-system failure (the destination not writable, a file vanished): its plain
            // reason, not Foundation's domain, code and user info.
            let path = e.filePath ?? e.url?.path ?? out
            let reason = (e.userInfo[NSUnderlyingErrorKey] as? NSError).map { String(cString: strerror(Int32($0.code))) } ?? e.localizedDescription
            fail("minkd backup: \(path): \(reason)")
        } catch {
            fail("minkd backup: \(error)")
        }
    }
}
