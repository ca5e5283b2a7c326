import Mink

/// What a database holds of minkd's layouts: whether the configured one (its tenancy, prefix and
/// schema) exists there yet, and where other minkd data lives in the same database.
///
/// minkd (`serve`, `export`, `import`) refuses to create a new layout in a database that already
/// holds minkd data laid out otherwise: a misconfigured `tenancy.strategy`, `schemaPrefix` or
/// `storage.schema` would otherwise serve an empty view next to the data and create the other
/// layout's tables beside it. `minkd migrate` creates one deliberately (several deployments may
/// share a database, each in its own schema or prefix).
public struct PostgresLayoutSurvey: Sendable, Equatable {
    /// Whether the configured layout has been created in this database: `.shared`, its schema
    /// holds minkd's migrated tables; `.schema(prefix:)`, some schema named `prefix…` does;
    /// `.database(prefix:)`, some database named `prefix…` exists.
    public var configuredExists: Bool
    /// The other schemas of this database holding minkd's tables, sorted.
    public var otherSchemas: [String]
}

extension PostgresStorage {
    /// Surveys the database for minkd's layouts (reads the catalogs only; creates nothing).
    /// - Throws: `.unavailable`.
    public func surveyLayout() async throws -> PostgresLayoutSurvey {
        let configuration = core.configuration
        return try await core.main.pool.withConnection { conn in
            // Every schema of this database holding minkd's migrations table.
            let rows = try conn.query("""
                SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relname = 'mink_schema_migrations' AND c.relkind = 'r' ORDER BY 1
                """)
            let schemas = (0..<rows.rowCount).compactMap { rows.string($0, 0) }
            switch configuration.tenancy {
            case .shared:
                return PostgresLayoutSurvey(
                    configuredExists: schemas.contains(configuration.schema), otherSchemas: schemas.filter { $0 != configuration.schema })
            case .schema(let prefix):
                let mine = schemas.filter { $0.hasPrefix(prefix) }
                return PostgresLayoutSurvey(configuredExists: !mine.isEmpty, otherSchemas: schemas.filter { !$0.hasPrefix(prefix) })
            case .database(let prefix):
                let databases = try conn.query(
                    "SELECT 1 FROM pg_database WHERE starts_with(datname, $1) AND datname <> current_database() LIMIT 1", [.text(prefix)]
                )
                return PostgresLayoutSurvey(configuredExists: databases.rowCount > 0, otherSchemas: schemas)
            }
        }
    }
}
