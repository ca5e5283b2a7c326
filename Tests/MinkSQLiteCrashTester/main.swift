// A child process for the kill -9 durability test (`CrashTests`): appends one event at a time to a
// few streams of the SQLite file named by its first argument and writes one line per acknowledged
// append — "<stream> <version> <position> <event id>" — straight to stdout (unbuffered write(2)),
// until it is killed. It stops by itself after 30 s so that it can never be left behind.
import Foundation
import Mink
import MinkSQLite

guard CommandLine.arguments.count == 2 else {
    FileHandle.standardError.write(Data("usage: MinkSQLiteCrashTester <database file>\n".utf8))
    exit(2)
}
let storage = try await SQLiteStorage.open(path: CommandLine.arguments[1])
let deadline = ContinuousClock.now + .seconds(30)
try await withThrowingTaskGroup(of: Void.self) { group in
    for k in 0..<4 {
        group.addTask {
            let stream = "crash-\(k)"
            var version = try await storage.streamInfo(stream)?.version ?? 0
            while ContinuousClock.now < deadline {
                let id = UUID().uuidString.lowercased()
                let request = AppendRequest(
                    streamID: stream, events: [EventData(id: id, type: "Tick", data: Data(#"{"v":\#(version + 1)}"#.utf8))],
                    expectedVersion: .exact(version)
                )
                let result = try await storage.append(request, hook: nil)
                version = result.toVersion
                FileHandle.standardOutput.write(Data("\(stream) \(result.toVersion) \(result.toPosition) \(id)\n".utf8))
            }
        }
    }
    try await group.waitForAll()
}
