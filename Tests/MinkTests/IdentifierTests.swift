import Foundation
import Testing
@testable import Mink

/// The one rule per identifier that the library, the server and the client share.
@Suite(.timeLimit(.minutes(3))) struct IdentifierTests {
    /// Stream IDs: no C0 control, no DEL and no C1 control (the library used to let C1 through
    /// while the HTTP API refused it).
    @Test func streamIDsRefuseEveryControlCharacter() async throws {
        for value: UInt32 in Array(0x00...0x1F) + Array(0x7F...0x9F) {
            let scalar = Unicode.Scalar(value)!
            #expect(StreamID.problem("a\(Character(scalar))b") != nil, "U+\(String(value, radix: 16))")
            #expect(throws: MinkError.self) { try StreamID.validate("a\(Character(scalar))b") }
        }
        #expect(StreamID.problem("a\u{85}b") == "stream ID contains the control character U+0085")
        for fine in ["order-1", "a/b é", "\u{A0}", "\u{7E}", "😀", String(repeating: "x", count: 256), "$all"] {
            #expect(StreamID.problem(fine) == nil, "\(fine)")
        }
        #expect(StreamID.problem(String(repeating: "é", count: 129)) == "stream ID is 258 bytes, longer than 256")
        // The store applies the same rule.
        let store = EventStore(adapter: InMemoryStorage())
        await #expect(throws: MinkError.self) {
            try await store.append("bad\u{9F}id", events: [EventData(type: "A", data: Data("{}".utf8))])
        }
    }

    @Test func tenantIDs() {
        for ok in ["acme", "0", "a-b_c", String(repeating: "a", count: 63)] { #expect(TenantID.isValid(ok), "\(ok)") }
        for bad in ["", "-a", "_a", "a.b", "*", "Acme", "é", String(repeating: "a", count: 64)] {
            #expect(!TenantID.isValid(bad), "\(bad)")
            #expect(throws: MinkError.self) { try TenantID.validate(bad) }
        }
    }

    /// Field paths: one pattern and one length limit (128 bytes per component) for queries, the
    /// HTTP API and projection declarations.
    @Test func fieldPaths() throws {
        let longest = String(repeating: "a", count: FieldPath.maxComponentBytes)
        for ok in ["a", "_", "a.b_c", "A1.b2.c3", longest, "\(longest).\(longest)"] {
            #expect(FieldPath.isValid(ok), "\(ok)")
            #expect(try FieldPath(ok).description == ok)
        }
        for bad in ["", ".", "a.", ".a", "a..b", "1a", "a.1b", "a-b", "a b", "é", longest + "a", "a.\(longest)b"] {
            #expect(!FieldPath.isValid(bad), "\(bad)")
            #expect(throws: MinkError.self) { _ = try FieldPath(bad) }
        }
        #expect(try FieldPath("address.city").components == ["address", "city"])
    }
}
