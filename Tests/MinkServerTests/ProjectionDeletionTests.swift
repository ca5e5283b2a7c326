import Foundation
import Mink
import MinkWire
import Testing

/// A declared projection handles the `$StreamDeleted` record of a deletion (HTTP-API.md
/// section 5), inline (in the deletion's transaction) and async (from the global log).
@Suite("Projections see stream deletions", .timeLimit(.minutes(3)))
struct ProjectionDeletionTests {
    static func yaml(mode: String) -> String {
        """
        projections:
          - name: accounts
            mode: \(mode)
            readModel: accounts
            handlers:
              - event: Opened
                id: "$.streamId"
                set:
                  open: true
              - event: "$StreamDeleted"
                id: "$.data.streamId"
                delete: true
        """
    }

    @Test(arguments: ProjectionStorage.allCases, ["inline", "async"])
    func deletionRemovesTheDocument(_ kind: ProjectionStorage, mode: String) async throws {
        try await withProjectionServer(kind, yaml: Self.yaml(mode: mode)) { s, _ in
            try await s.append("acct-1", [("Opened", "{}")])
            try await s.append("acct-2", [("Opened", "{}")])
            if mode == "async" { try await s.waitForProjection("accounts") }
            #expect(try await s.document("accounts", "acct-1")?["open"] == true)
            #expect(try await s.request("DELETE", "/v1/streams/acct-1?hard=true").status == 200)
            if mode == "async" { try await s.waitForProjection("accounts") }
            #expect(try await s.document("accounts", "acct-1") == nil, "the record's handler deleted the document")
            #expect(try await s.document("accounts", "acct-2")?["open"] == true)
        }
    }
}
