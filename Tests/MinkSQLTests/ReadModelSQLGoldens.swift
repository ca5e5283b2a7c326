import MinkSQL

// Golden SQL per operator (see `goldenCases`); reviewed by hand against Query+Evaluation.swift.
let sqliteGoldens: [String: (sql: String, binds: [SQLBind])] = [
    "eqNumber": (
        #"((json_type("doc", '$.total') IN ('integer', 'real') AND json_extract("doc", '$.total') = ?))"#,
        [.double(100.0)]
    ),
    "eqString": (
        #"((json_type("doc", '$.a.b') = 'text' AND json_extract("doc", '$.a.b') = ?))"#,
        [.text("x")]
    ),
    "eqBool": (
        #"(json_type("doc", '$.flag') = ?)"#,
        [.text("true")]
    ),
    "eqNull": (
        #"(FALSE)"#,
        []
    ),
    "ne": (
        #"((json_extract("doc", '$.status') IS NOT NULL AND NOT COALESCE((json_type("doc", '$.status') = 'text' AND json_extract("doc", '$.status') = ?), FALSE)))"#,
        [.text("done")]
    ),
    "neBool": (
        #"((json_extract("doc", '$.flag') IS NOT NULL AND NOT COALESCE(json_type("doc", '$.flag') = ?, FALSE)))"#,
        [.text("false")]
    ),
    "gt": (
        #"((json_type("doc", '$.total') IN ('integer', 'real') AND json_extract("doc", '$.total') > ?))"#,
        [.double(1.5)]
    ),
    "gte": (
        #"((json_type("doc", '$.total') IN ('integer', 'real') AND json_extract("doc", '$.total') >= ?))"#,
        [.double(2.0)]
    ),
    "lt": (
        #"((json_type("doc", '$.total') IN ('integer', 'real') AND json_extract("doc", '$.total') < ?))"#,
        [.double(3.0)]
    ),
    "lteString": (
        #"((json_type("doc", '$.name') = 'text' AND json_extract("doc", '$.name') <= ?))"#,
        [.text("m")]
    ),
    "gtBool": (
        #"(FALSE)"#,
        []
    ),
    "in": (
        #"(((json_type("doc", '$.s') IN ('integer', 'real') AND json_extract("doc", '$.s') IN (?)) OR (json_type("doc", '$.s') = 'text' AND json_extract("doc", '$.s') IN (?)) OR json_type("doc", '$.s') = ?))"#,
        [.double(1.0), .text("a"), .text("true")]
    ),
    "inEmpty": (
        #"(FALSE)"#,
        []
    ),
    "notIn": (
        #"((json_extract("doc", '$.s') IS NOT NULL AND NOT COALESCE((json_type("doc", '$.s') = 'text' AND json_extract("doc", '$.s') IN (?, ?)), FALSE)))"#,
        [.text("a"), .text("b")]
    ),
    "between": (
        #"((json_type("doc", '$.n') IN ('integer', 'real') AND json_extract("doc", '$.n') BETWEEN ? AND ?))"#,
        [.double(1.0), .double(5.0)]
    ),
    "betweenStrings": (
        #"((json_type("doc", '$.n') = 'text' AND json_extract("doc", '$.n') BETWEEN ? AND ?))"#,
        [.text("a"), .text("c")]
    ),
    "betweenMixed": (
        #"(FALSE)"#,
        []
    ),
    "like": (
        #"((json_type("doc", '$.name') = 'text' AND json_extract("doc", '$.name') GLOB ?))"#,
        [.text("a*?%[*][?][[]")]
    ),
    "isNull": (
        #"(json_extract("doc", '$.x') IS NULL)"#,
        []
    ),
    "isNotNull": (
        #"(json_extract("doc", '$.x') IS NOT NULL)"#,
        []
    ),
    "containsString": (
        #"(((json_type("doc", '$.tags') = 'text' AND instr(json_extract("doc", '$.tags'), ?) > 0) OR (json_type("doc", '$.tags') = 'array' AND EXISTS (SELECT 1 FROM json_each("doc", '$.tags') AS "e" WHERE "e"."type" = 'text' AND "e"."value" = ?))))"#,
        [.text("red"), .text("red")]
    ),
    "containsNumber": (
        #"((json_type("doc", '$.tags') = 'array' AND EXISTS (SELECT 1 FROM json_each("doc", '$.tags') AS "e" WHERE "e"."type" IN ('integer', 'real') AND "e"."value" = ?)))"#,
        [.double(3.0)]
    ),
    "containsBool": (
        #"((json_type("doc", '$.tags') = 'array' AND EXISTS (SELECT 1 FROM json_each("doc", '$.tags') AS "e" WHERE "e"."type" = ?)))"#,
        [.text("true")]
    ),
    "containsNull": (
        #"(FALSE)"#,
        []
    ),
    "groups": (
        #"(((json_type("doc", '$.a') IN ('integer', 'real') AND json_extract("doc", '$.a') = ?) AND (json_type("doc", '$.b') IN ('integer', 'real') AND json_extract("doc", '$.b') = ?)) OR ((json_type("doc", '$.c') IN ('integer', 'real') AND json_extract("doc", '$.c') = ?)))"#,
        [.double(1.0), .double(2.0), .double(3.0)]
    ),
]
let postgresGoldens: [String: (sql: String, binds: [SQLBind])] = [
    "eqNumber": (
        #"((CASE WHEN jsonb_typeof("doc" #> '{"total"}') = 'number' THEN (CASE WHEN (("doc" #> '{"total"}'))::numeric > 1.7976931348623157e308 THEN 'Infinity'::float8 WHEN (("doc" #> '{"total"}'))::numeric < -1.7976931348623157e308 THEN '-Infinity'::float8 WHEN abs((("doc" #> '{"total"}'))::numeric) < 4.9406564584124654e-324 THEN 0::float8 ELSE (("doc" #> '{"total"}'))::numeric::float8 END) END) = $1::float8)"#,
        [.double(100.0)]
    ),
    "eqString": (
        #"((CASE WHEN jsonb_typeof("doc" #> '{"a","b"}') = 'string' THEN "doc" #>> '{"a","b"}' END) COLLATE "C" = $1::text)"#,
        [.text("x")]
    ),
    "eqBool": (
        #"(("doc" #> '{"flag"}') = $1::jsonb)"#,
        [.text("true")]
    ),
    "eqNull": (
        #"(FALSE)"#,
        []
    ),
    "ne": (
        #"(((("doc" #> '{"status"}') IS NOT NULL AND jsonb_typeof("doc" #> '{"status"}') <> 'null') AND NOT COALESCE((CASE WHEN jsonb_typeof("doc" #> '{"status"}') = 'string' THEN "doc" #>> '{"status"}' END) COLLATE "C" = $1::text, FALSE)))"#,
        [.text("done")]
    ),
    "neBool": (
        #"(((("doc" #> '{"flag"}') IS NOT NULL AND jsonb_typeof("doc" #> '{"flag"}') <> 'null') AND NOT COALESCE(("doc" #> '{"flag"}') = $1::jsonb, FALSE)))"#,
        [.text("false")]
    ),
    "gt": (
        #"((CASE WHEN jsonb_typeof("doc" #> '{"total"}') = 'number' THEN (CASE WHEN (("doc" #> '{"total"}'))::numeric > 1.7976931348623157e308 THEN 'Infinity'::float8 WHEN (("doc" #> '{"total"}'))::numeric < -1.7976931348623157e308 THEN '-Infinity'::float8 WHEN abs((("doc" #> '{"total"}'))::numeric) < 4.9406564584124654e-324 THEN 0::float8 ELSE (("doc" #> '{"total"}'))::numeric::float8 END) END) > $1::float8)"#,
        [.double(1.5)]
    ),
    "gte": (
        #"((CASE WHEN jsonb_typeof("doc" #> '{"total"}') = 'number' THEN (CASE WHEN (("doc" #> '{"total"}'))::numeric > 1.7976931348623157e308 THEN 'Infinity'::float8 WHEN (("doc" #> '{"total"}'))::numeric < -1.7976931348623157e308 THEN '-Infinity'::float8 WHEN abs((("doc" #> '{"total"}'))::numeric) < 4.9406564584124654e-324 THEN 0::float8 ELSE (("doc" #> '{"total"}'))::numeric::float8 END) END) >= $1::float8)"#,
        [.double(2.0)]
    ),
    "lt": (
        #"((CASE WHEN jsonb_typeof("doc" #> '{"total"}') = 'number' THEN (CASE WHEN (("doc" #> '{"total"}'))::numeric > 1.7976931348623157e308 THEN 'Infinity'::float8 WHEN (("doc" #> '{"total"}'))::numeric < -1.7976931348623157e308 THEN '-Infinity'::float8 WHEN abs((("doc" #> '{"total"}'))::numeric) < 4.9406564584124654e-324 THEN 0::float8 ELSE (("doc" #> '{"total"}'))::numeric::float8 END) END) < $1::float8)"#,
        [.double(3.0)]
    ),
    "lteString": (
        #"((CASE WHEN jsonb_typeof("doc" #> '{"name"}') = 'string' THEN "doc" #>> '{"name"}' END) COLLATE "C" <= $1::text)"#,
        [.text("m")]
    ),
    "gtBool": (
        #"(FALSE)"#,
        []
    ),
    "in": (
        #"(((CASE WHEN jsonb_typeof("doc" #> '{"s"}') = 'number' THEN (CASE WHEN (("doc" #> '{"s"}'))::numeric > 1.7976931348623157e308 THEN 'Infinity'::float8 WHEN (("doc" #> '{"s"}'))::numeric < -1.7976931348623157e308 THEN '-Infinity'::float8 WHEN abs((("doc" #> '{"s"}'))::numeric) < 4.9406564584124654e-324 THEN 0::float8 ELSE (("doc" #> '{"s"}'))::numeric::float8 END) END) IN ($1::float8) OR (CASE WHEN jsonb_typeof("doc" #> '{"s"}') = 'string' THEN "doc" #>> '{"s"}' END) IN ($2::text) OR ("doc" #> '{"s"}') = $3::jsonb))"#,
        [.double(1.0), .text("a"), .text("true")]
    ),
    "inEmpty": (
        #"(FALSE)"#,
        []
    ),
    "notIn": (
        #"(((("doc" #> '{"s"}') IS NOT NULL AND jsonb_typeof("doc" #> '{"s"}') <> 'null') AND NOT COALESCE((CASE WHEN jsonb_typeof("doc" #> '{"s"}') = 'string' THEN "doc" #>> '{"s"}' END) IN ($1::text, $2::text), FALSE)))"#,
        [.text("a"), .text("b")]
    ),
    "between": (
        #"((CASE WHEN jsonb_typeof("doc" #> '{"n"}') = 'number' THEN (CASE WHEN (("doc" #> '{"n"}'))::numeric > 1.7976931348623157e308 THEN 'Infinity'::float8 WHEN (("doc" #> '{"n"}'))::numeric < -1.7976931348623157e308 THEN '-Infinity'::float8 WHEN abs((("doc" #> '{"n"}'))::numeric) < 4.9406564584124654e-324 THEN 0::float8 ELSE (("doc" #> '{"n"}'))::numeric::float8 END) END) BETWEEN $1::float8 AND $2::float8)"#,
        [.double(1.0), .double(5.0)]
    ),
    "betweenStrings": (
        #"((CASE WHEN jsonb_typeof("doc" #> '{"n"}') = 'string' THEN "doc" #>> '{"n"}' END) COLLATE "C" BETWEEN $1::text AND $2::text)"#,
        [.text("a"), .text("c")]
    ),
    "betweenMixed": (
        #"(FALSE)"#,
        []
    ),
    "like": (
        #"((CASE WHEN jsonb_typeof("doc" #> '{"name"}') = 'string' THEN "doc" #>> '{"name"}' END) LIKE $1::text ESCAPE '\')"#,
        [.text("a%_\\%*?[")]
    ),
    "isNull": (
        #"((("doc" #> '{"x"}') IS NULL OR jsonb_typeof("doc" #> '{"x"}') = 'null'))"#,
        []
    ),
    "isNotNull": (
        #"((("doc" #> '{"x"}') IS NOT NULL AND jsonb_typeof("doc" #> '{"x"}') <> 'null'))"#,
        []
    ),
    "containsString": (
        #"((strpos((CASE WHEN jsonb_typeof("doc" #> '{"tags"}') = 'string' THEN "doc" #>> '{"tags"}' END), $1::text) > 0 OR (jsonb_typeof("doc" #> '{"tags"}') = 'array' AND ("doc" #> '{"tags"}') @> $2::jsonb)))"#,
        [.text("red"), .text("[\"red\"]")]
    ),
    "containsNumber": (
        #"((jsonb_typeof("doc" #> '{"tags"}') = 'array' AND ("doc" #> '{"tags"}') @> $1::jsonb))"#,
        [.text("[3]")]
    ),
    "containsBool": (
        #"((jsonb_typeof("doc" #> '{"tags"}') = 'array' AND ("doc" #> '{"tags"}') @> $1::jsonb))"#,
        [.text("[true]")]
    ),
    "containsNull": (
        #"(FALSE)"#,
        []
    ),
    "groups": (
        #"(((CASE WHEN jsonb_typeof("doc" #> '{"a"}') = 'number' THEN (CASE WHEN (("doc" #> '{"a"}'))::numeric > 1.7976931348623157e308 THEN 'Infinity'::float8 WHEN (("doc" #> '{"a"}'))::numeric < -1.7976931348623157e308 THEN '-Infinity'::float8 WHEN abs((("doc" #> '{"a"}'))::numeric) < 4.9406564584124654e-324 THEN 0::float8 ELSE (("doc" #> '{"a"}'))::numeric::float8 END) END) = $1::float8 AND (CASE WHEN jsonb_typeof("doc" #> '{"b"}') = 'number' THEN (CASE WHEN (("doc" #> '{"b"}'))::numeric > 1.7976931348623157e308 THEN 'Infinity'::float8 WHEN (("doc" #> '{"b"}'))::numeric < -1.7976931348623157e308 THEN '-Infinity'::float8 WHEN abs((("doc" #> '{"b"}'))::numeric) < 4.9406564584124654e-324 THEN 0::float8 ELSE (("doc" #> '{"b"}'))::numeric::float8 END) END) = $2::float8) OR ((CASE WHEN jsonb_typeof("doc" #> '{"c"}') = 'number' THEN (CASE WHEN (("doc" #> '{"c"}'))::numeric > 1.7976931348623157e308 THEN 'Infinity'::float8 WHEN (("doc" #> '{"c"}'))::numeric < -1.7976931348623157e308 THEN '-Infinity'::float8 WHEN abs((("doc" #> '{"c"}'))::numeric) < 4.9406564584124654e-324 THEN 0::float8 ELSE (("doc" #> '{"c"}'))::numeric::float8 END) END) = $3::float8))"#,
        [.double(1.0), .double(2.0), .double(3.0)]
    ),
]
