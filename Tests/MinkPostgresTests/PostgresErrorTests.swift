import Foundation
import Mink
@testable import MinkPostgres
import Testing

@Suite(.timeLimit(.minutes(3))) struct PostgresErrorTests {
    @Test func classifiesBySQLState() {
        func error(_ state: String?, lost: Bool = false) -> PostgresError { PostgresError(sqlState: state, message: "m", connectionLost: lost) }
        #expect(error("23505").isUniqueViolation && !error("23505").isTransient)
        #expect(error("40001").isSerializationFailure && error("40001").isTransient)
        #expect(error("40P01").isDeadlock && error("40P01").isTransient)
        #expect(error("08006").isConnectionException && error("08006").isTransient)
        #expect(error(nil, lost: true).isConnectionException && error(nil).isTransient)
        #expect(error("53300").isTransient && error("57P01").isTransient && error("55P03").isTransient)
        #expect(!error("42601").isTransient && !error("23503").isUniqueViolation)

        let unavailable = error("40001").minkError
        #expect(unavailable.code == .unavailable && unavailable.isTransient)
        #expect((unavailable.underlying as? PostgresError)?.sqlState == "40001")
        let invalid = error("22P05").minkError
        #expect(invalid.code == .validationFailed && (invalid.underlying as? PostgresError)?.sqlState == "22P05")
        #expect(error("42601").minkError.code == .internalError)

        // Shown in logs and outage causes: no "-----" for a failure without an SQLSTATE.
        #expect("\(error("40001"))" == "40001: m")
        #expect("\(error(nil, lost: true))" == "connection lost (no SQLSTATE): m")
        #expect("\(PostgresError(sqlState: nil, message: "m", timedOut: true))" == "timed out (no SQLSTATE): m")
        #expect("\(error(nil))" == "client error (no SQLSTATE): m")
    }

    /// A server older than PostgreSQL 12 is refused when connecting, with a permanent error that
    /// names the version; 12 and newer (and the server the tests run) are accepted.
    @Test func refusesServersOlderThanTwelve() throws {
        for (old, shown) in [(Int32(110_005), "11.5"), (100_023, "10.23"), (90_624, "9.6")] {
            do {
                try PostgresConnection.checkServerVersion(old)
                Issue.record("server version \(old) accepted")
            } catch {
                #expect(error.sqlState == "0A000" && !error.isTransient)
                #expect(error.minkError.code == .internalError)
                #expect(error.message == "PostgreSQL 12 or newer is required; the server is \(shown)")
            }
        }
        try PostgresConnection.checkServerVersion(120_000)
        try PostgresConnection.checkServerVersion(150_010)
        let conn = try PostgresConnection(parameters: [("dbname", try TestServer.url()), ("connect_timeout", "2")])
        conn.close()
    }

    /// A real unique violation from the server keeps its SQLSTATE and constraint name, and the
    /// `MinkError` it becomes keeps it as its cause.
    @Test func realUniqueViolationKeepsItsCode() throws {
        let conn = try PostgresConnection(parameters: [("dbname", try TestServer.url()), ("connect_timeout", "2")])
        defer { conn.close() }
        try conn.query("CREATE TEMP TABLE unique_probe (id int PRIMARY KEY)")
        try conn.query("INSERT INTO unique_probe VALUES (1)")
        do {
            try conn.query("INSERT INTO unique_probe VALUES (1)")
            Issue.record("a second row with the same primary key was accepted")
        } catch let e as PostgresError {
            #expect(e.sqlState == "23505" && e.isUniqueViolation)
            #expect(e.constraint == "unique_probe_pkey")
            #expect(!e.isTransient && !e.connectionLost)
            let mink = e.minkError
            #expect(mink.code == .internalError && !mink.isTransient)
            let cause = try #require(mink.underlying as? PostgresError)
            #expect(cause.sqlState == "23505" && cause.constraint == "unique_probe_pkey")
        }
    }

    /// A value the server rejects through the public API comes out `.validationFailed`, with the
    /// server's SQLSTATE kept as the cause.
    @Test func rejectedValueKeepsItsSQLState() async throws {
        let s = try await TestServer.storage()
        defer { Task { await s.shutdown() } }
        do {
            // jsonb rejects a lone surrogate escape (22P02 "invalid input syntax for type json").
            try await s.transaction { try $0.putDocument("docs", id: "x", json: Data(#"{"a":"\ud800"}"#.utf8)) }
            Issue.record("the server accepted a document with a lone surrogate")
        } catch let e as MinkError {
            #expect(e.code == .validationFailed)
            let state = try #require((e.underlying as? PostgresError)?.sqlState)
            #expect(state.hasPrefix("22"))
        }
    }
}
