/// The SQL dialects MinkSQL renders.
///
/// The two differ in placeholders (`?` against `$n`), in how a JSON document is taken apart
/// (SQLite's `json_extract`/`json_type`/`json_each` on JSON text against PostgreSQL's
/// `#>`/`jsonb_typeof`/`@>` on JSONB) and in collation and `NULL` ordering spelled out.
public enum SQLDialect: String, Sendable, Hashable, CaseIterable {
    /// SQLite 3.38 or later (JSON functions built in); placeholders are `?`.
    case sqlite
    /// PostgreSQL 12 or later; placeholders are `$1`, `$2`, … with explicit casts.
    case postgres
}
