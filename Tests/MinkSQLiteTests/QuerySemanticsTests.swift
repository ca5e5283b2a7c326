import Foundation
import Mink
import MinkSQLite
import Testing

/// A small deterministic generator (SplitMix64), so a failing case can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Differential test: random documents and random queries, answered by SQLite's generated SQL and
/// by the reference evaluation (`InMemoryStorage`, i.e. `Query+Evaluation.swift`); the answers,
/// order included, must be identical.
@Suite("SQLite query semantics = reference semantics", .timeLimit(.minutes(3)))
struct QuerySemanticsTests {
    static let scalars: [JSONValue] = [
        nil, true, false, 0, 1, -1, 1.5, 2, 10, 100, "", "a", "A", "ab", "b", "a%", "a_b", "é", "z", "10", "true",
    ]

    static func value(_ g: inout SeededGenerator, depth: Int = 0) -> JSONValue {
        switch Int.random(in: 0..<10, using: &g) {
        case 0 where depth == 0: return .array((0..<Int.random(in: 0..<4, using: &g)).map { _ in scalars.randomElement(using: &g)! })
        case 1 where depth == 0: return .object(["c": value(&g, depth: 1)])
        default: return scalars.randomElement(using: &g)!
        }
    }

    static func document(_ g: inout SeededGenerator) -> JSONValue {
        var o: [String: JSONValue] = [:]
        for key in ["a", "b", "tags"] where Int.random(in: 0..<5, using: &g) > 0 { o[key] = value(&g) }
        if Bool.random(using: &g) { o["n"] = .object(["c": value(&g, depth: 1)]) }
        return .object(o)
    }

    static let patterns: [String] = ["a%", "%b", "_", "a\\%", "%", "A%", "a_b", "\\_%", "é%", "%a%", "a\\", "*", "[a]%"]

    static func filter(_ g: inout SeededGenerator, _ q: Query, newGroup: Bool) -> Query {
        let field = ["a", "b", "tags", "n.c", "missing"].randomElement(using: &g)!
        let op = QueryOperator.allCases.randomElement(using: &g)!
        let v: JSONValue
        switch op {
        case .in, .notIn: v = .array((0..<Int.random(in: 0..<4, using: &g)).map { _ in scalars.randomElement(using: &g)! })
        case .between: v = [scalars.randomElement(using: &g)!, scalars.randomElement(using: &g)!]
        case .like: v = .string(patterns.randomElement(using: &g)!)
        default: v = scalars.randomElement(using: &g)!
        }
        return newGroup ? q.or(field, op, v) : q.and(field, op, v)
    }

    static func query(_ g: inout SeededGenerator) -> Query {
        var q = Query()
        for i in 0..<Int.random(in: 0..<4, using: &g) { q = filter(&g, q, newGroup: i > 0 && Bool.random(using: &g)) }
        for _ in 0..<Int.random(in: 0..<3, using: &g) {
            q = q.orderBy(["a", "b", "tags", "n.c", "missing"].randomElement(using: &g)!, descending: Bool.random(using: &g))
        }
        if Int.random(in: 0..<3, using: &g) == 0 { q = q.limit(Int.random(in: 0..<8, using: &g)) }
        if Int.random(in: 0..<3, using: &g) == 0 { q = q.offset(Int.random(in: 0..<8, using: &g)) }
        return q
    }

    @Test func randomQueriesAgreeWithTheReferenceEvaluation() async throws {
        let (s, dir) = try await SQLiteStorage.temporary()
        defer { dir.remove() }
        let reference = InMemoryStorage()
        var g = SeededGenerator(state: 20_261_126)
        let docs = (0..<60).map { i in ("d\(i < 10 ? "0" : "")\(i)", Self.document(&g).jsonData()) }
        try await s.transaction { tx in for (id, json) in docs { try tx.putDocument("m", id: id, json: json) } }
        try await reference.transaction { tx in for (id, json) in docs { try tx.putDocument("m", id: id, json: json) } }
        var mismatches = 0
        for _ in 0..<600 {
            let q = Self.query(&g)
            let expected = try await reference.find("m", query: q).map(\.id)
            let got = try await s.find("m", query: q).map(\.id)
            let expectedCount = try await reference.count("m", query: q)
            let gotCount = try await s.count("m", query: q)
            if got != expected || gotCount != expectedCount {
                mismatches += 1
                if mismatches <= 5 { Issue.record("query \(q)\nexpected \(expected) (\(expectedCount))\ngot      \(got) (\(gotCount))") }
            }
        }
        #expect(mismatches == 0)
        await s.close()
    }
}
