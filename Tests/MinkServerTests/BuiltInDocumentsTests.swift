import Foundation
import Mink
import MinkHTTP
@testable import MinkServer
import Testing

/// `GET /v1/openapi.json` and the console under `/ui/` (HTTP-API.md section 10): built into the
/// binary from docs/openapi.yaml and console/, open without a token, and the document describes
/// every route the router has.
@Suite("Built-in documents", .timeLimit(.minutes(3)))
struct BuiltInDocumentsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func file(_ path: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
    }

    /// The served copy is the file: run scripts/embed-assets after editing docs/openapi.yaml or console/.
    @Test func theGeneratedCopiesMatchTheirSources() throws {
        #expect(EmbeddedAssets.openAPIYAML + "\n" == (try Self.file("docs/openapi.yaml")), "run scripts/embed-assets")
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.root.appendingPathComponent("console").path)
            .filter { [".html", ".js", ".css"].contains(where: $0.hasSuffix) }
        #expect(Set(names) == Set(EmbeddedAssets.console.keys), "run scripts/embed-assets")
        for name in names {
            #expect(EmbeddedAssets.console[name].map { $0.body + "\n" } == (try Self.file("console/\(name)")), "console/\(name): run scripts/embed-assets")
        }
    }

    /// The document as the server serves it.
    static func document() throws -> [String: Any] {
        let json = try #require(API.openAPIJSON, "the built-in docs/openapi.yaml does not convert to JSON")
        return try #require(try JSONSerialization.jsonObject(with: Data(json)) as? [String: Any])
    }

    /// Route templates as written in Router.swift's `template`: every one (but the console's)
    /// must be a path of the document — a route added without documenting it fails here.
    @Test func everyRouteTemplateIsAPathOfTheDocument() throws {
        let source = try Self.file("Sources/MinkServer/Router.swift")
        let start = try #require(source.range(of: "var template: String {"))
        let end = try #require(source.range(of: "\n    }\n", range: start.upperBound..<source.endIndex))
        let templates = source[start.upperBound..<end.lowerBound].split(separator: "\n").compactMap { line -> String? in
            guard let open = line.firstIndex(of: "\""), let close = line.lastIndex(of: "\""), open < close else { return nil }
            return String(line[line.index(after: open)..<close])
        }
        #expect(templates.count >= 25, "parsed \(templates)")
        let paths = try #require(try Self.document()["paths"] as? [String: Any])
        for template in templates where !template.hasPrefix("/ui") {
            #expect(paths[template] != nil, "route \(template) is missing from docs/openapi.yaml")
        }
    }

    /// The document offers the `access_token` query parameter exactly where the server takes it:
    /// on `GET` (and `HEAD`) operations; every other operation names the bearer header alone (or
    /// no security), since the server refuses the parameter there with `401`.
    @Test func accessTokenIsOfferedOnReadsOnly() throws {
        let doc = try Self.document()
        let global = try #require(doc["security"] as? [[String: Any]])
        #expect(global.contains { $0["accessToken"] != nil }, "GETs inherit the global requirement")
        let paths = try #require(doc["paths"] as? [String: Any])
        var writes = 0
        for (template, item) in paths {
            let operations = try #require(item as? [String: Any])
            for (method, op) in operations where ["post", "put", "delete", "patch"].contains(method) {
                let operation = try #require(op as? [String: Any])
                let security = try #require(operation["security"] as? [[String: Any]], "\(method) \(template) inherits accessToken")
                #expect(!security.contains { $0["accessToken"] != nil }, "\(method) \(template) offers accessToken")
                writes += 1
            }
        }
        #expect(writes >= 13)
    }

    /// Every method the router accepts on a documented path is documented there (and the
    /// console is the only undocumented route, as section 10 allows).
    @Test func everyMethodTheRouterAcceptsIsDocumented() throws {
        let paths = try #require(try Self.document()["paths"] as? [String: Any])
        let sample = ["streamId": "order-1", "category": "order", "name": "orders", "model": "orders", "id": "o-1"]
        var checked = 0
        for (template, item) in paths {
            let operations = try #require(item as? [String: Any])
            var path = template
            for (k, v) in sample { path = path.replacingOccurrences(of: "{\(k)}", with: v) }
            for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
                guard let route = try? Router.route(method: method, path: path) else { continue }
                // A concrete path may route to a templated one (`GET /v1/readmodels/orders/query`
                // is the document `query`): the method must be documented on the route's path.
                let documented = route.template == template ? operations : (paths[route.template] as? [String: Any]) ?? [:]
                #expect(documented[method.lowercased()] != nil, "\(method) \(route.template) is served but not documented")
                checked += 1
            }
        }
        #expect(checked >= 25)
    }

    @Test func theDocumentIsServedAsJSONWithoutAToken() async throws {
        try await withTenantServer(.memory, tokens: AuthTests.tokens) { (s, _, _) async throws in
            let r = try await s.request("GET", "/v1/openapi.json")
            #expect(r.status == 200)
            #expect(r.headers["Content-Type"] == "application/json; charset=utf-8")
            let doc = try #require(r.json.objectValue)
            #expect(doc["openapi"]?.stringValue == "3.1.0")
            // YAML 1.1 words stay strings through the conversion.
            let text = r.text
            #expect(text.contains(#""const":"no""#) && text.contains(#""=""#))
            let head = try await s.request("HEAD", "/v1/openapi.json")
            #expect(head.status == 200 && head.body.isEmpty)
        }
    }

    @Test func theConsoleIsServedWithAStrictPolicyWithoutAToken() async throws {
        try await withTenantServer(.memory, tokens: AuthTests.tokens) { (s, _, _) async throws in
            let index = try await s.request("GET", "/ui/")
            #expect(index.status == 200)
            #expect(index.headers["Content-Type"] == "text/html; charset=utf-8")
            let csp = try #require(index.headers["Content-Security-Policy"])
            #expect(csp.contains("default-src 'none'") && csp.contains("script-src 'self'") && !csp.contains("unsafe"))
            #expect(index.headers["X-Content-Type-Options"] == "nosniff")
            #expect(index.text == EmbeddedAssets.console["index.html"]?.body)
            for (name, type) in [("app.js", "text/javascript; charset=utf-8"), ("style.css", "text/css; charset=utf-8")] {
                let r = try await s.request("GET", "/ui/\(name)")
                #expect(r.status == 200 && r.headers["Content-Type"] == type, "\(name): \(r.status)")
            }
            let redirect = try await s.request("GET", "/ui")
            #expect(redirect.status == 308 && redirect.headers["Location"] == "/ui/")
            let missing = try await s.request("GET", "/ui/nope.js")
            #expect(missing.status == 404 && missing.errorCode == "not_found")
            let escape = try await s.request("GET", "/ui/..%2F..%2Fetc%2Fpasswd")
            #expect(escape.status == 404 && escape.errorCode == "not_found")
            let post = try await s.request("POST", "/ui/", json: "{}")
            #expect(post.status == 405 && post.errorCode == "method_not_allowed")
        }
    }
}
