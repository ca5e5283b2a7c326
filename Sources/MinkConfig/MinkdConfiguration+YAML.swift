import Foundation
extension MinkdConfiguration {
    /// The effective configuration as YAML with secrets hidden, for `minkd check-config`:
    /// every token's `sha256` and the password in `storage.url` are replaced by `"<redacted>"`.
    public func redactedDescription() -> String {
        yaml(redactingSecrets: true)
    }

    /// The effective configuration as YAML, every key written out.
    ///
    /// Without redaction the output loads back into an equal configuration
    /// (except `insecure` and `configFile`, which are not file keys).
    /// - Parameter redactingSecrets: hide token hashes and the database password.
    public func yaml(redactingSecrets: Bool) -> String {
        var lines: [String] = []
        func line(_ indent: Int, _ text: String) { lines.append(String(repeating: "  ", count: indent) + text) }
        line(0, "listen: \(quote(listen.description))")
        line(0, "storage:")
        line(1, "kind: \(storage.kind.rawValue)")
        line(1, "dataDir: \(quote(storage.dataDir))")
        if let url = storage.url {
            line(1, "url: \(quote(redactingSecrets ? Self.redactPassword(in: url) : url))")
        }
        line(1, "pool: \(storage.pool)")
        line(1, "timeoutSeconds: \(storage.timeoutSeconds)")
        line(0, "tenancy:")
        line(1, "strategy: \(tenancy.strategy.rawValue)")
        line(1, "schemaPrefix: \(quote(tenancy.schemaPrefix))")
        line(1, "autoCreate: \(tenancy.autoCreate)")
        line(0, "auth:")
        line(1, "enabled: \(auth.enabled)")
        if auth.tokens.isEmpty {
            line(1, "tokens: []")
        } else {
            line(1, "tokens:")
            for token in auth.tokens {
                line(2, "- name: \(quote(token.name))")
                line(2, "  sha256: \(quote(redactingSecrets ? "<redacted>" : token.sha256))")
                line(2, "  tenant: \(quote(token.tenant))")
                line(2, "  roles: [\(token.roles.sorted().map(\.rawValue).joined(separator: ", "))]")
                if let limit = token.rateLimit {
                    line(2, "  rateLimit: { perSecond: \(limit.perSecond), burst: \(limit.burst) }")
                }
            }
        }
        line(0, "limits:")
        line(1, "maxBodyBytes: \(limits.maxBodyBytes)")
        line(1, "maxEventsPerAppend: \(limits.maxEventsPerAppend)")
        line(1, "maxEventBytes: \(limits.maxEventBytes)")
        line(1, "maxConnections: \(limits.maxConnections)")
        line(1, "subscriberBuffer: \(limits.subscriberBuffer)")
        line(1, "maxRequestLineBytes: \(limits.maxRequestLineBytes)")
        line(1, "maxHeaderBytes: \(limits.maxHeaderBytes)")
        line(1, "maxImportBytes: \(limits.maxImportBytes)")
        line(0, "http:")
        line(1, "idleTimeoutSeconds: \(http.idleTimeoutSeconds)")
        line(1, "headerTimeoutSeconds: \(http.headerTimeoutSeconds)")
        line(1, "bodyIdleTimeoutSeconds: \(http.bodyIdleTimeoutSeconds)")
        line(1, "bodyTimeoutSeconds: \(http.bodyTimeoutSeconds)")
        line(1, "gzipMinBytes: \(http.gzipMinBytes)")
        line(1, "sseKeepaliveSeconds: \(http.sseKeepaliveSeconds)")
        line(1, "cors: { allowedOrigins: [\(http.corsAllowedOrigins.map(quote).joined(separator: ", "))] }")
        line(0, "retention:")
        line(1, "scavengeIntervalSeconds: \(retention.scavengeIntervalSeconds)")
        line(0, "shutdown:")
        line(1, "graceSeconds: \(shutdown.graceSeconds)")
        line(0, "metrics:")
        line(1, "requireToken: \(metrics.requireToken)")
        line(0, "logging:")
        line(1, "level: \(logging.level.rawValue)")
        line(1, "format: \(logging.format?.rawValue ?? "auto")")
        if projections.isEmpty {
            line(0, "projections: []")
        } else {
            line(0, "projections:")
            for projection in projections {
                line(1, "- name: \(projection.name)")
                line(1, "  mode: \(projection.mode.rawValue)")
                line(1, "  readModel: \(projection.readModel)")
                if !projection.indexes.isEmpty {
                    line(1, "  indexes: [\(projection.indexes.joined(separator: ", "))]")
                }
                line(1, "  handlers:")
                for handler in projection.handlers {
                    line(2, "- event: \(quote(handler.event))")
                    line(2, "  id: \(Self.yaml(handler.id))")
                    for (key, assignments) in [("set", handler.set), ("increment", handler.increment), ("append", handler.append)]
                    where !assignments.isEmpty {
                        line(2, "  \(key):")
                        for assignment in assignments { line(2, "    \(assignment.field): \(Self.yaml(assignment.value))") }
                    }
                    if !handler.unset.isEmpty { line(2, "  unset: [\(handler.unset.joined(separator: ", "))]") }
                    if handler.delete { line(2, "  delete: true") }
                }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A projection value in YAML flow style; literal strings starting with `$` get the `$$` escape.
    static func yaml(_ value: ProjectionValue) -> String {
        switch value {
        case .path(let path): return quote(path.description)
        case .null: return "null"
        case .bool(let value): return String(value)
        case .int(let value): return String(value)
        case .double(let value): return value.description
        case .string(let text): return quote(text.hasPrefix("$") ? "$" + text : text)
        case .array(let elements): return "[" + elements.map(yaml).joined(separator: ", ") + "]"
        case .object(let members): return "{" + members.map { "\(quote($0.key)): \(yaml($0.value))" }.joined(separator: ", ") + "}"
        }
    }

    /// Replaces every password of a PostgreSQL connection string with `<redacted>`: the one of a
    /// URL's user info (`scheme://user:password@host`), its `password=` query parameters, and the
    /// `password` of a libpq key/value string (`password = 'a b'` quoted included). Every log line,
    /// error and `check-config` output that shows a connection string goes through this.
    public static func redactPassword(in url: String) -> String {
        if let scheme = url.range(of: "://") {
            let authorityEnd = url[scheme.upperBound...].firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? url.endIndex
            let authority = url[scheme.upperBound..<authorityEnd]
            var text = url
            if let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") {
                text = String(url[..<url.index(after: colon)]) + "<redacted>" + String(url[at...])
            }
            return redactParameter(text, separators: ["&", "#"])
        }
        return redactParameter(url, separators: [" ", "\t", "\n"])
    }

    /// The passwords a connection string holds (as written, percent-decoded, unquoted), for
    /// scrubbing messages that quote them — libpq's own errors repeat a malformed URI or token.
    public static func passwords(in url: String) -> [String] {
        var found: [String] = []
        var separators: Set<Character> = [" ", "\t", "\n"]
        if let scheme = url.range(of: "://") {
            separators = ["&", "#"]
            let authorityEnd = url[scheme.upperBound...].firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? url.endIndex
            let authority = url[scheme.upperBound..<authorityEnd]
            if let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") {
                found.append(String(authority[authority.index(after: colon)..<at]))
            }
        }
        found += passwordValueRanges(in: url, separators: separators).map { String(url[$0]) }
        var all: [String] = []
        for p in found where !p.isEmpty {
            all.append(p)
            if let decoded = p.removingPercentEncoding, decoded != p, !decoded.isEmpty { all.append(decoded) }
            let unquoted = p.trimmingCharacters(in: CharacterSet(charactersIn: "'"))
            if unquoted != p, !unquoted.isEmpty { all.append(unquoted) }
        }
        return all
    }

    /// `text` with every password of `url` replaced by `<redacted>`.
    public static func scrub(_ text: String, passwordsOf url: String) -> String {
        passwords(in: url).sorted { $0.count > $1.count }.reduce(text) { $0.replacingOccurrences(of: $1, with: "<redacted>") }
    }

    /// `password=value` (the key in any case, spaces around `=` in key/value strings, a quoted
    /// value whole) → `password=<redacted>`, for every occurrence.
    private static func redactParameter(_ text: String, separators: Set<Character>) -> String {
        var out = ""
        var from = text.startIndex
        for range in passwordValueRanges(in: text, separators: separators) {
            // Up to the key's `=`, then the marker (spaces around `=` dropped).
            var keyEnd = range.lowerBound
            while keyEnd > from, text[text.index(before: keyEnd)] != "=" { keyEnd = text.index(before: keyEnd) }
            var beforeEquals = text.index(before: keyEnd)
            while beforeEquals > from, text[text.index(before: beforeEquals)] == " " { beforeEquals = text.index(before: beforeEquals) }
            out += text[from..<beforeEquals] + "=<redacted>"
            from = range.upperBound
        }
        return out + text[from...]
    }

    /// The ranges of the values of every `password` key in `text` (a query string or a libpq
    /// key/value string): the key whole (at the start or after a separator, `?` or `&`), in any
    /// case, `=` with optional spaces, then a quoted value whole or up to the next separator.
    private static func passwordValueRanges(in text: String, separators: Set<Character>) -> [Range<String.Index>] {
        var ranges: [Range<String.Index>] = []
        var searchFrom = text.startIndex
        while let key = text.range(of: "password", options: .caseInsensitive, range: searchFrom..<text.endIndex) {
            searchFrom = key.upperBound
            let before = key.lowerBound == text.startIndex ? nil : text[text.index(before: key.lowerBound)]
            guard before == nil || before == "?" || before == "&" || separators.contains(before!) else { continue }
            var i = key.upperBound
            while i < text.endIndex, text[i] == " " { i = text.index(after: i) }
            guard i < text.endIndex, text[i] == "=" else { continue }
            i = text.index(after: i)
            while i < text.endIndex, text[i] == " " { i = text.index(after: i) }
            var end = i
            if end < text.endIndex, text[end] == "'" {
                end = text.index(after: end)
                while end < text.endIndex, text[end] != "'" {
                    if text[end] == "\\", text.index(after: end) < text.endIndex { end = text.index(after: end) }
                    end = text.index(after: end)
                }
                if end < text.endIndex { end = text.index(after: end) }
            } else {
                while end < text.endIndex, !separators.contains(text[end]) { end = text.index(after: end) }
            }
            ranges.append(i..<end)
            searchFrom = end
        }
        return ranges
    }
}

/// A YAML double-quoted scalar (JSON-compatible escapes).
func quote(_ text: String) -> String {
    var output = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": output += "\\\""
        case "\\": output += "\\\\"
        case "\n": output += "\\n"
        case "\t": output += "\\t"
        case "\r": output += "\\r"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F || scalar == "\u{2028}" || scalar == "\u{2029}" {
                let hex = String(scalar.value, radix: 16)
                output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                output.unicodeScalars.append(scalar)
            }
        }
    }
    return output + "\""
}
