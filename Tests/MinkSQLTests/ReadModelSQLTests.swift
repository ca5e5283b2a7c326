import Foundation
import Mink
import MinkSQL
import Testing

/// The operator cases pinned by the golden tests.
let goldenCases: [(name: String, query: Query)] = [
    ("eqNumber", Query().where("total", "=", 100)),
    ("eqString", Query().where("a.b", "=", "x")),
    ("eqBool", Query().where("flag", "=", true)),
    ("eqNull", Query().where("flag", "=", nil)),
    ("ne", Query().where("status", "!=", "done")),
    ("neBool", Query().where("flag", "!=", false)),
    ("gt", Query().where("total", ">", 1.5)),
    ("gte", Query().where("total", ">=", 2)),
    ("lt", Query().where("total", "<", 3)),
    ("lteString", Query().where("name", "<=", "m")),
    ("gtBool", Query().where("flag", ">", false)),
    ("in", Query().where("s", "in", ["a", 1, true, nil])),
    ("inEmpty", Query().where("s", "in", [])),
    ("notIn", Query().where("s", "not in", ["a", "b"])),
    ("between", Query().where("n", "between", [1, 5])),
    ("betweenStrings", Query().where("n", "between", ["a", "c"])),
    ("betweenMixed", Query().where("n", "between", [1, "z"])),
    ("like", Query().where("name", "like", "a%_\\%*?[")),
    ("isNull", Query().where("x", "is null")),
    ("isNotNull", Query().where("x", "is not null")),
    ("containsString", Query().where("tags", "contains", "red")),
    ("containsNumber", Query().where("tags", "contains", 3)),
    ("containsBool", Query().where("tags", "contains", true)),
    ("containsNull", Query().where("tags", "contains", nil)),
    ("groups", Query().where("a", "=", 1).and("b", "=", 2).or("c", "=", 3)),
]

/// Renders a case's filter condition and binds.
func render(_ dialect: SQLDialect, _ query: Query) throws -> (String, [SQLBind]) {
    var b = SQLBuilder(dialect: dialect)
    let sql = try ReadModelSQL(dialect: dialect).condition(for: query, into: &b) ?? ""
    return (sql, b.binds)
}

/// Checks that `$n` placeholders appear in text order 1, 2, 3 … and that `?` count matches the binds,
/// so positional SQLite binds and numbered PostgreSQL binds line up.
func checkPlaceholders(_ dialect: SQLDialect, _ sql: String, _ binds: [SQLBind]) {
    switch dialect {
    case .sqlite:
        #expect(sql.filter { $0 == "?" }.count == binds.count, "\(sql)")
    case .postgres:
        let numbers = sql.split(separator: "$").dropFirst().map { Int($0.prefix { $0.isNumber })! }
        #expect(numbers == Array(1...max(1, binds.count)).prefix(binds.count).map { $0 }, "\(sql)")
    }
}

@Suite(.timeLimit(.minutes(3))) struct ReadModelSQLGoldenTests {
    @Test(arguments: SQLDialect.allCases)
    func everyCaseMatchesItsGolden(dialect: SQLDialect) throws {
        let goldens = dialect == .sqlite ? sqliteGoldens : postgresGoldens
        #expect(goldens.count == goldenCases.count)
        for (name, query) in goldenCases {
            let (sql, binds) = try render(dialect, query)
            let golden = try #require(goldens[name], "no golden for \(name)")
            #expect(sql == golden.sql, "\(dialect) \(name)")
            #expect(binds == golden.binds, "\(dialect) \(name)")
            checkPlaceholders(dialect, sql, binds)
        }
    }

    @Test func sqliteFindStatement() throws {
        let q = Query().where("status", "=", "open").orderBy("total", descending: true).limit(10).offset(20)
        let f = try ReadModelSQL(dialect: .sqlite).find("orders", tenantID: "t1", query: q)
        #expect(f.sql == """
            SELECT "id", "doc" FROM "mink_documents" WHERE "tenant_id" = ? AND "model" = ? AND ((json_type("doc", '$.status') = 'text' AND json_extract("doc", '$.status') = ?)) \
            ORDER BY CASE json_type("doc", '$.total') WHEN 'true' THEN 1 WHEN 'false' THEN 1 WHEN 'integer' THEN 2 WHEN 'real' THEN 2 WHEN 'text' THEN 3 WHEN 'array' THEN 4 WHEN 'object' THEN 4 ELSE 0 END DESC, \
            CASE json_type("doc", '$.total') WHEN 'array' THEN NULL WHEN 'object' THEN NULL ELSE json_extract("doc", '$.total') END DESC, "id" ASC LIMIT ? OFFSET ?
            """)
        #expect(f.binds == [.text("t1"), .text("orders"), .text("open"), .int(10), .int(20)])
    }

    @Test func postgresFindStatement() throws {
        let q = Query().where("status", "=", "open").orderBy("total").limit(10).offset(20)
        let f = try ReadModelSQL(dialect: .postgres).find("orders", tenantID: "t1", query: q)
        #expect(f.sql == """
            SELECT "id", "doc" FROM "mink_documents" WHERE "tenant_id" = $1::text AND "model" = $2::text AND ((CASE WHEN jsonb_typeof("doc" #> '{"status"}') = 'string' THEN "doc" #>> '{"status"}' END) COLLATE "C" = $3::text) \
            ORDER BY CASE jsonb_typeof("doc" #> '{"total"}') WHEN 'boolean' THEN 1 WHEN 'number' THEN 2 WHEN 'string' THEN 3 WHEN 'array' THEN 4 WHEN 'object' THEN 4 ELSE 0 END ASC, \
            (CASE WHEN jsonb_typeof("doc" #> '{"total"}') = 'boolean' THEN (("doc" #> '{"total"}'))::boolean END) ASC NULLS FIRST, \
            (CASE WHEN jsonb_typeof("doc" #> '{"total"}') = 'number' THEN (CASE WHEN (("doc" #> '{"total"}'))::numeric > 1.7976931348623157e308 THEN 'Infinity'::float8 WHEN (("doc" #> '{"total"}'))::numeric < -1.7976931348623157e308 THEN '-Infinity'::float8 WHEN abs((("doc" #> '{"total"}'))::numeric) < 4.9406564584124654e-324 THEN 0::float8 ELSE (("doc" #> '{"total"}'))::numeric::float8 END) END) ASC NULLS FIRST, \
            (CASE WHEN jsonb_typeof("doc" #> '{"total"}') = 'string' THEN "doc" #>> '{"total"}' END) COLLATE "C" ASC NULLS FIRST, \
            "id" COLLATE "C" ASC LIMIT $4::bigint OFFSET $5::bigint
            """)
        #expect(f.binds == [.text("t1"), .text("orders"), .text("open"), .int(10), .int(20)])
        checkPlaceholders(.postgres, f.sql, f.binds)
    }

    @Test(arguments: SQLDialect.allCases)
    func countIgnoresPaging(dialect: SQLDialect) throws {
        let f = try ReadModelSQL(dialect: dialect).count("orders", tenantID: "t1", query: Query().where("x", "is null").limit(3).offset(1))
        #expect(f.binds == [.text("t1"), .text("orders")])
        #expect(f.sql.hasPrefix("SELECT COUNT(*) FROM \"mink_documents\" WHERE "))
        #expect(!f.sql.contains("LIMIT") && !f.sql.contains("OFFSET") && !f.sql.contains("ORDER"))
    }

    @Test func offsetWithoutLimit() throws {
        let s = try ReadModelSQL(dialect: .sqlite).find("m", tenantID: nil, query: Query().offset(5))
        #expect(s.sql == #"SELECT "id", "doc" FROM "mink_documents" WHERE "model" = ? ORDER BY "id" ASC LIMIT -1 OFFSET ?"#)
        #expect(s.binds == [.text("m"), .int(5)])
        let p = try ReadModelSQL(dialect: .postgres).find("m", tenantID: nil, query: Query().offset(5))
        #expect(p.sql == #"SELECT "id", "doc" FROM "mink_documents" WHERE "model" = $1::text ORDER BY "id" COLLATE "C" ASC OFFSET $2::bigint"#)
    }

    @Test func schemaQualifiedTableWithoutTenantColumn() throws {
        let gen = ReadModelSQL(
            dialect: .postgres, table: SQLTableName("documents", schema: SQLIdentifier("tenant_acme")),
            columns: .init(tenantID: nil)
        )
        let f = try gen.count("orders", tenantID: "acme", query: Query())
        #expect(f.sql == #"SELECT COUNT(*) FROM "tenant_acme"."documents" WHERE "model" = $1::text"#)
        #expect(f.binds == [.text("orders")])
    }

    @Test(arguments: SQLDialect.allCases)
    func hostileFieldIsRejectedBeforeAnySQL(dialect: SQLDialect) throws {
        let gen = ReadModelSQL(dialect: dialect)
        for field in ["a'); drop table x;--", "a.b'", "a..b", "$.a", "{a}", "a b", "1a", "", "a\u{0}"] {
            let q = Query().where(field, "=", 1)
            #expect(throws: MinkError.self) { try gen.find("m", tenantID: "t", query: q) }
            #expect(throws: MinkError.self) { try gen.count("m", tenantID: "t", query: q) }
            do { _ = try gen.find("m", tenantID: "t", query: Query().orderBy(field)); Issue.record("accepted \(field)") } catch let e as MinkError {
                #expect(e.code == .invalidQuery)
            }
        }
    }

    @Test(arguments: SQLDialect.allCases)
    func valuesNeverReachTheSQLText(dialect: SQLDialect) throws {
        let evil = "x'); DROP TABLE mink_documents; --"
        let q = Query().where("a", "=", .string(evil)).or("b", "like", .string(evil)).or("c", "contains", .string(evil))
            .or("d", "in", [.string(evil)]).or("e", "between", [.string(evil), .string(evil)])
        let f = try ReadModelSQL(dialect: dialect).find(evil, tenantID: evil, query: q)
        #expect(!f.sql.contains("DROP"))
        #expect(f.binds.count >= 7)
    }

    @Test func fieldExpressionsForIndexes() throws {
        let path = try FieldPath("address.city")
        #expect(try ReadModelSQL(dialect: .sqlite).fieldExpression(path) == #"json_extract("doc", '$.address.city')"#)
        #expect(try ReadModelSQL(dialect: .postgres).fieldExpression(path) == #"("doc" #> '{"address","city"}')"#)
        #expect(try ReadModelSQL(dialect: .postgres).jsonPathLiteral(path) == #"'{"address","city"}'"#)
    }
}

@Suite(.timeLimit(.minutes(3))) struct ModelNameInliningTests {
    @Test func plainModelNamesAreInlinedWhenAsked() throws {
        let gen = ReadModelSQL(dialect: .sqlite, inlinesModelNames: true)
        let f = try gen.count("orders", tenantID: "t", query: Query())
        #expect(f.sql == #"SELECT COUNT(*) FROM "mink_documents" WHERE "tenant_id" = ? AND "model" = 'orders'"#)
        #expect(f.binds == [.text("t")])
    }

    @Test func otherModelNamesStayBound() throws {
        let gen = ReadModelSQL(dialect: .sqlite, inlinesModelNames: true)
        for model in ["it's", "a-b", "ünï", String(repeating: "m", count: 41), "x'); DROP TABLE t; --"] {
            let f = try gen.count(model, tenantID: "t", query: Query())
            #expect(f.sql == #"SELECT COUNT(*) FROM "mink_documents" WHERE "tenant_id" = ? AND "model" = ?"#)
            #expect(f.binds == [.text("t"), .text(model)])
        }
    }
}
