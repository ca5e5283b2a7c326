import Foundation
import MinkTestFixtures
import Mink
import MinkSQLite
import Testing

/// Kills a process that is appending (SIGKILL, no chance to clean up) and checks that every
/// append it had acknowledged is in the file afterwards, exactly once, with dense versions.
@Suite("SQLite durability across kill -9", .timeLimit(.minutes(3)))
struct CrashTests {
    /// The crash tester sits next to the test bundle in the build directory.
    static var testerPath: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return ((exe as NSString).deletingLastPathComponent as NSString).appendingPathComponent("MinkSQLiteCrashTester")
    }

    @Test func everyAcknowledgedAppendSurvivesKill9() async throws {
        let tester = Self.testerPath
        try #require(FileManager.default.isExecutableFile(atPath: tester), "crash tester not built at \(tester)")
        let dir = TempDirectory()
        defer { dir.remove() }

        let process = try ChildProcess(executable: tester, arguments: [dir.file()])
        // Killed once it has acknowledged some appends (it keeps appending meanwhile), not after
        // a fixed time: a busy machine once let it acknowledge only 4 in 1.2 s.
        let (early, started) = await process.standardOutput.read(
            until: { $0.split(separator: "\n").count > 20 }, timeout: .seconds(60))
        try await Task.sleep(for: .milliseconds(100))
        kill(process.processIdentifier, SIGKILL)
        #expect(started, "the child acknowledged too few appends within 60 s: \(early)")
        let exit = await ProcessLaunch.exit(of: process)
        #expect(exit == ProcessLaunch.Exit(reason: .uncaughtSignal, status: SIGKILL))
        let output = early + String(decoding: process.standardOutput.readDataToEndOfFile(), as: UTF8.self)

        struct Ack: Hashable { let stream: String; let version: Int64; let position: UInt64; let id: String }
        let acks = output.split(separator: "\n").compactMap { line -> Ack? in
            let f = line.split(separator: " ")
            guard f.count == 4, let v = Int64(f[1]), let p = UInt64(f[2]) else { return nil }  // a torn last line is ignored
            return Ack(stream: String(f[0]), version: v, position: p, id: String(f[3]))
        }
        #expect(acks.count > 10, "the child acknowledged only \(acks.count) appends")

        let storage = try await SQLiteStorage.open(path: dir.file())
        let all = try await storage.readAll(after: 0, filter: .all, limit: 1_000_000)
        #expect(all.map(\.globalPosition) == Array(1...UInt64(max(all.count, 1))).prefix(all.count).map { $0 }, "dense positions")
        let byID = Dictionary(grouping: all, by: \.id)
        for ack in acks {
            let found = byID[ack.id] ?? []
            #expect(found.count == 1, "acknowledged event \(ack.id) found \(found.count) times")
            if let e = found.first {
                #expect(e.streamID == ack.stream && e.version == ack.version && e.globalPosition == ack.position)
            }
        }
        for k in 0..<4 {
            let versions = try await storage.readStream("crash-\(k)", from: 1, limit: 1_000_000, direction: .forward).map(\.version)
            #expect(versions == Array(1...Int64(max(versions.count, 1))).prefix(versions.count).map { $0 }, "dense versions in crash-\(k)")
        }
        await storage.close()
    }
}
