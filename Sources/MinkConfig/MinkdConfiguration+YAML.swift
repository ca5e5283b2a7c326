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

    /// `password=value` (the key in any case, spaces around `=` in key/value strings, a quoted
    /// value whole) → `password=<redacted>`, for every occurrence.
    private static func redactParameter(_ text: String, separators: Set<Character>) -> String {
        var out = ""
        var rest = Substring(text)
        while let key = rest.range(of: "password", options: .caseInsensitive) {
            // Only a whole key: at the start or after a separator, `?`, or `&`.
            let before = key.lowerBound == rest.startIndex ? nil : rest[rest.index(before: key.lowerBound)]
            var i = key.upperBound
            while i < rest.endIndex, rest[i] == " " { i = rest.index(after: i) }
            let isKey = (before == nil || before == "?" || before == "&" || separators.contains(before!)) && i < rest.endIndex && rest[i] == "="
            guard isKey else {
                out += rest[..<key.upperBound]
                rest = rest[key.upperBound...]
                continue
            }
            i = rest.index(after: i)
            while i < rest.endIndex, rest[i] == " " { i = rest.index(after: i) }
            var end = i
            if end < rest.endIndex, rest[end] == "'" {
                end = rest.index(after: end)
                while end < rest.endIndex, rest[end] != "'" {
                    if rest[end] == "\\", rest.index(after: end) < rest.endIndex { end = rest.index(after: end) }
                    end = rest.index(after: end)
                }
                if end < rest.endIndex { end = rest.index(after: end) }
            } else {
                while end < rest.endIndex, !separators.contains(rest[end]) { end = rest.index(after: end) }
            }
            out += rest[..<key.upperBound] + "=<redacted>"
            rest = rest[end...]
        }
        return out + rest
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
