import Foundation
import Mink
import MinkHTTP
import MinkWire

extension API {
    /// The path of the import route, whose body the transport spools to a file.
    static let importPath = "/v1/admin/import"

    /// Events per storage read of an export: one page in memory at a time.
    static let exportPageSize = 1000

    /// Ends an export that could not finish (shutdown, storage failure) without the chunked
    /// terminator, so that the client sees a truncated body rather than a complete one and
    /// resumes with `after`.
    struct ExportInterrupted: Error {}

    /// `GET /v1/admin/export?after=N` (HTTP-API.md section 9): every event of the tenant after
    /// position N in global order, one event JSON (section 4) per line, streamed in constant
    /// memory: pages of ``exportPageSize`` events from storage, each written as one chunk (gzip-
    /// encoded when accepted) before the next page is read; the writer suspends while the client
    /// reads slower, so a slow client holds one page. The export ends at the head it reaches;
    /// events committed while it runs may be included.
    func export(_ c: RequestContext) throws -> HTTPResponse {
        let after = UInt64(try c.query.integer("after", default: 0, in: 0...Int64.max))
        let store = c.store
        let gzip = Gzip.isAccepted(by: c.request.headers["Accept-Encoding"])
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: NDJSON.contentType)
        headers.add(name: "Vary", value: "Accept-Encoding")
        if gzip { headers.add(name: "Content-Encoding", value: "gzip") }
        let pageSize = Self.exportPageSize
        return HTTPResponse(status: 200, headers: headers, body: .stream { writer in
            do {
                let encoder = gzip ? try GzipEncoder(level: 1) : nil
                var cursor = after
                while true {
                    if writer.isShuttingDown { throw ExportInterrupted() }
                    let page = try await store.readAll(after: cursor, limit: pageSize)
                    if page.isEmpty { break }
                    var w = JSONWriter(capacity: 64 * 1024)
                    for e in page { NDJSON.line(e, into: &w) }
                    cursor = page.last!.globalPosition
                    let bytes = encoder?.encode(w.bytes) ?? w.bytes
                    if !bytes.isEmpty { try await writer.write(bytes) }
                }
                if let encoder { try await writer.write(encoder.finish()) }
            } catch is CancellationError {
                throw ExportInterrupted()
            }
        })
    }

    /// `POST /v1/admin/import` (HTTP-API.md section 9): an NDJSON export into this tenant, which
    /// must have no events; all or nothing.
    ///
    /// The body arrives spooled to a temporary file by the transport (never whole in memory) and
    /// is read from there batch by batch inside the storage's one import transaction, decoded
    /// from gzip on the way, with `limits.maxImportBytes` counted on the decoded bytes.
    /// What an import checks before it touches storage: its media type and coding (the lines
    /// themselves are checked as they are read, inside the import's transaction). Returns whether
    /// the body is gzip.
    func importInput(_ request: HTTPRequest) throws -> Bool {
        let contentType = request.headers["Content-Type"].map {
            String($0.split(separator: ";").first ?? "").trimmingCharacters(in: .whitespaces).lowercased()
        }
        guard contentType == NDJSON.contentType else {
            throw APIError(.unsupportedMediaType, "an import body must be NDJSON (Content-Type: \(NDJSON.contentType))")
        }
        switch request.headers.requestContentCoding {
        case .gzip: return true
        case .identity: return false
        case .unsupported: throw APIError(.unsupportedMediaType, "unsupported Content-Encoding (only gzip and identity are accepted)")
        }
    }

    func importEvents(_ c: RequestContext) async throws -> HTTPResponse {
        let gzip = try importInput(c.request)
        let source: NDJSONImportSource
        let limit = configuration.limits.maxImportBytes, maxEventBytes = configuration.limits.maxEventBytes
        if let spool = c.request.bodySpool {
            source = try NDJSONImportSource(gzip: gzip, limit: limit, maxEventBytes: maxEventBytes) { try spool.read() }
        } else {
            // No body (or a transport without spooling, as in-process tests): the bytes at hand.
            var body: [UInt8]? = c.request.body
            source = try NDJSONImportSource(gzip: gzip, limit: limit, maxEventBytes: maxEventBytes) {
                defer { body = [] }
                return body ?? []
            }
        }
        do {
            let summary = try await c.store.importEvents(from: source)
            return Reply.json(ImportResultBody(events: summary.events, streams: summary.streams, head: Int64(summary.head)))
        } catch let e as ImportLineError {
            throw APIError(ErrorCode(rawValue: e.code), e.description, details: ["line": .int(Int64(e.line))])
        } catch let e as NDJSONImportSource.TooLarge {
            throw APIError(.payloadTooLarge, e.description)
        } catch let e as NDJSONImportSource.BadEncoding {
            throw APIError(.badRequest, e.description)
        } catch let e as MinkError where e.code == .tenantNotEmpty {
            throw APIError(.tenantNotEmpty, e.message)
        } catch let e as MinkError where e.code == .invalidImport {
            throw APIError(.badRequest, e.message)
        }
    }
}
