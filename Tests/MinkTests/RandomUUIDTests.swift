import Foundation
import Testing

@testable import Mink

@Suite("Random UUIDs", .timeLimit(.minutes(1)))
struct RandomUUIDTests {
    /// Generated event IDs are version-4 UUIDs, never repeat — across the buffer's refills (one
    /// per 256) and from many threads at once — and are not all the same bytes.
    @Test func versionFourUniqueAcrossRefillsAndThreads() async throws {
        let ids = await withTaskGroup(of: [UUID].self) { group in
            for _ in 0..<8 { group.addTask { (0..<1_000).map { _ in UUID.random() } } }
            var all: [UUID] = []
            for await part in group { all += part }
            return all
        }
        #expect(ids.count == 8_000)
        #expect(Set(ids).count == ids.count)
        for id in ids {
            let b = id.uuid
            #expect(b.6 >> 4 == 4, "version nibble of \(id)")
            #expect(b.8 >> 6 == 0b10, "variant bits of \(id)")
        }
        // Every byte position varies (a buffer never filled would give zeros).
        let first = ids.map { $0.uuid.0 }, last = ids.map { $0.uuid.15 }
        #expect(Set(first).count > 200 && Set(last).count > 200)
        #expect(ids.allSatisfy { $0.lowercasedText == $0.uuidString.lowercased() })
    }
}
