import Foundation
import Mink
@testable import MinkServer
import MinkWire
import Testing

/// Every query operator and AND/OR combination over HTTP, on documents written by a declared
/// projection, on every storage.
@Suite("Projection read-model queries", .timeLimit(.minutes(3)))
struct ProjectionQueryTests {
    static let yaml = """
        projections:
          - name: things
            mode: inline
            indexes: [n, address.city]
            handlers:
              - event: Put
                id: "$.data.id"
                set:
                  id: "$.data.id"
                  name: "$.data.name"
                  n: "$.data.n"
                  tags: "$.data.tags"
                  address.city: "$.data.city"
                  flag: "$.data.flag"
                  opt: "$.data.opt"
        """

    static let things = [
        #"{"id":"t1","name":"apple","n":1,"tags":["red","fruit"],"city":"Oslo","flag":true,"opt":"x"}"#,
        #"{"id":"t2","name":"banana","n":5,"tags":["yellow","fruit"],"city":"Rome","flag":false}"#,
        #"{"id":"t3","name":"cherry","n":10,"tags":["red"],"city":"Oslo","flag":true}"#,
        #"{"id":"t4","name":"date","n":2.5,"tags":[],"city":"Paris","flag":false,"opt":"y"}"#,
        #"{"id":"t5","name":"Apple pie","n":-3,"tags":["dessert"],"flag":true}"#,
    ]

    static func cond(_ field: String, _ op: String, _ value: String? = nil) -> String {
        #"{"field":"\#(field)","op":"\#(op)""# + (value.map { #","value":\#($0)"# } ?? "") + "}"
    }

    /// (where groups, expected IDs in ID order)
    static let cases: [([[String]], [String])] = [
        ([[cond("name", "=", #""apple""#)]], ["t1"]),
        ([[cond("address.city", "!=", #""Oslo""#)]], ["t2", "t4"]),
        ([[cond("n", ">", "2.5")]], ["t2", "t3"]),
        ([[cond("n", ">=", "2.5")]], ["t2", "t3", "t4"]),
        ([[cond("n", "<", "1")]], ["t5"]),
        ([[cond("n", "<=", "1")]], ["t1", "t5"]),
        ([[cond("name", "in", #"["apple","date","zzz"]"#)]], ["t1", "t4"]),
        ([[cond("address.city", "not in", #"["Oslo"]"#)]], ["t2", "t4"]),
        ([[cond("name", "like", #""%pp%""#)]], ["t1", "t5"]),
        ([[cond("name", "like", #""a%""#)]], ["t1"]),
        ([[cond("opt", "is null")]], ["t2", "t3", "t5"]),
        ([[cond("opt", "is not null")]], ["t1", "t4"]),
        ([[cond("address.city", "is null")]], ["t5"]),
        ([[cond("tags", "contains", #""red""#)]], ["t1", "t3"]),
        ([[cond("name", "contains", #""an""#)]], ["t2"]),
        ([[cond("n", "between", "[1, 5]")]], ["t1", "t2", "t4"]),
        ([[cond("flag", "=", "true")]], ["t1", "t3", "t5"]),
        ([[cond("flag", "=", "true"), cond("address.city", "=", #""Oslo""#)]], ["t1", "t3"]),
        ([[cond("name", "=", #""date""#)], [cond("n", ">", "9")]], ["t3", "t4"]),
        ([[cond("flag", "=", "true"), cond("n", "<", "5")], [cond("address.city", "=", #""Rome""#)]], ["t1", "t2", "t5"]),
        ([[cond("flag", "=", "true"), cond("n", "<", "5"), cond("name", "like", #""A%""#)], [cond("tags", "contains", #""yellow""#), cond("n", "=", "5")]], ["t2", "t5"]),
        ([], ["t1", "t2", "t3", "t4", "t5"]),
        // An empty group is an AND of nothing: it matches everything, alone or ORed with others.
        ([[]], ["t1", "t2", "t3", "t4", "t5"]),
        ([[], [cond("name", "=", #""apple""#)]], ["t1", "t2", "t3", "t4", "t5"]),
        ([[cond("name", "=", #""apple""#)], []], ["t1", "t2", "t3", "t4", "t5"]),
    ]

    @Test(arguments: ProjectionStorage.allCases)
    func everyOperatorAndCombination(_ kind: ProjectionStorage) async throws {
        try await withProjectionServer(kind, yaml: Self.yaml) { s, _ in
            try await s.append("things", Self.things.map { ("Put", $0) })
            for (groups, expected) in Self.cases {
                let whereJSON = "[" + groups.map { "[" + $0.joined(separator: ",") + "]" }.joined(separator: ",") + "]"
                let body = #"{"where":\#(whereJSON)}"#
                #expect(try await s.queryIDs("things", body) == expected, "\(body)")
                let count = try await s.request("POST", "/v1/readmodels/things/count", json: body)
                #expect(count["count"] == .int(Int64(expected.count)), "count \(body)")
            }
            // Ordering and paging, with `total` ignoring them.
            let r = try await s.request("POST", "/v1/readmodels/things/query", json: #"{"where":[],"orderBy":[{"field":"n","desc":true}],"limit":2,"offset":1}"#)
            #expect(r["items"]?.arrayValue?.map { $0.objectValue?["id"] } == ["t2", "t4"] && r["total"] == .int(5))
            let list = try await s.request("GET", "/v1/readmodels/things?orderBy=-n&limit=2")
            #expect(list["items"]?.arrayValue?.map { $0.objectValue?["id"] } == ["t3", "t2"] && list["total"] == .int(5))
            let plain = try await s.request("GET", "/v1/readmodels/things")
            #expect(plain.status == 200 && plain["items"]?.arrayValue?.count == 5 && plain["total"] == .int(5), "no orderBy: \(plain.text)")
            let cities = try await s.request("GET", "/v1/readmodels/things?orderBy=address.city,-n&limit=10&offset=3")
            #expect(cities["items"]?.arrayValue?.map { $0.objectValue?["id"] } == ["t4", "t2"] && cities["total"] == .int(5))
            // Anything that is not a plain path or a known operator: 400 invalid_query.
            for bad in [
                #"{"where":[[{"field":"a;drop","op":"=","value":1}]]}"#, #"{"where":[[{"field":"n","op":"~","value":1}]]}"#,
                #"{"where":[[{"field":"n","op":"between","value":[1]}]]}"#, #"{"orderBy":[{"field":"$.x"}]}"#,
            ] {
                let e = try await s.request("POST", "/v1/readmodels/things/query", json: bad)
                #expect(e.status == 400 && e.errorCode == "invalid_query", "\(bad) → \(e.text)")
            }
            #expect(try await s.request("GET", "/v1/readmodels/things?orderBy=n-1").errorCode == "invalid_query")
            // Queries past the limits (SQLite once answered these with 500): 400 invalid_query
            // on every storage, and the limits themselves are accepted.
            func groups(_ n: Int, each: Int = 1) -> String {
                let group = "[" + Array(repeating: #"{"field":"n","op":"=","value":1}"#, count: each).joined(separator: ",") + "]"
                return #"{"where":["# + Array(repeating: group, count: n).joined(separator: ",") + "]}"
            }
            let inList = { (n: Int) in #"{"where":[[{"field":"n","op":"in","value":["# + (0..<n).map(String.init).joined(separator: ",") + "]}]]}" }
            for (body, ok) in [(groups(997), false), (groups(1, each: 1000), false), (groups(101), false), (inList(1001), false),
                               (groups(100), true), (groups(10, each: 10), true), (inList(1000), true)] {
                for path in ["query", "count"] {
                    let r = try await s.request("POST", "/v1/readmodels/things/\(path)", json: body)
                    if ok {
                        #expect(r.status == 200, "\(path) \(body.prefix(60)) → \(r.text)")
                    } else {
                        #expect(r.status == 400 && r.errorCode == "invalid_query", "\(path) \(body.prefix(60)) → \(r.text)")
                    }
                }
            }
            let sortKeys = { (n: Int) in Array(repeating: "n", count: n).joined(separator: ",") }
            #expect(try await s.request("GET", "/v1/readmodels/things?orderBy=\(sortKeys(1000))").errorCode == "invalid_query")
            #expect(try await s.request("GET", "/v1/readmodels/things?orderBy=\(sortKeys(17))").errorCode == "invalid_query")
            #expect(try await s.request("GET", "/v1/readmodels/things?orderBy=\(sortKeys(16))").status == 200)

            // A page holds at most 10,000 documents on both forms: a POST query asking for more
            // is 400 (it was unbounded: a response built in memory over a whole large model).
            let tooMany = try await s.request("POST", "/v1/readmodels/things/query", json: #"{"limit":10001}"#)
            #expect(tooMany.status == 400 && tooMany.errorCode == "invalid_query" && tooMany.text.contains("10000"), "\(tooMany.text)")
            #expect(try await s.request("GET", "/v1/readmodels/things?limit=10001").status == 400)
            let most = try await s.request("POST", "/v1/readmodels/things/query", json: #"{"limit":10000}"#)
            #expect(most.status == 200 && most["total"] == .int(5))
            let unlimited = try await s.request("POST", "/v1/readmodels/things/query", json: #"{"where":[]}"#)
            #expect(unlimited.status == 200 && unlimited["items"]?.arrayValue?.count == 5, "\(unlimited.text)")
        }
    }

    /// A POST query without `limit` gets the largest page, 10,000 documents; with one, its own.
    @Test func aQueryWithoutLimitGetsTheLargestPage() throws {
        #expect(try API.paged(Query()).limitCount == 10_000)
        #expect(try API.paged(Query().limit(7)).limitCount == 7)
        #expect(throws: APIError.self) { try API.paged(Query().limit(10_001)) }
    }
}
