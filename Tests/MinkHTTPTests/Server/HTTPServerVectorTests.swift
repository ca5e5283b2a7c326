import Testing
@testable import MinkHTTP

/// The conformance README's verdicts, end to end against a live server.
@Suite(.timeLimit(.minutes(3))) struct HTTPServerVectorTests {
    @Test func conformanceVectorsEndToEnd() async throws {
        try await withTestServer { server, port in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for vector in Vector.all {
                    group.addTask { try await Self.check(vector, port: port) }
                }
                try await group.waitForAll()
            }
            #expect(server.metrics.totalRequests > 0)
        }
    }

    static func check(_ vector: Vector, port: Int) async throws {
        let client = try await RawClient.connect(port: port)
        await client.send(vector.bytes)
        let expected = vector.requests ?? 1
        let heads = Array(repeating: vector.head ?? false, count: max(expected, 4))
        if vector.valid && vector.expect_close != true {
            _ = await client.readResponses(expected, heads: heads, timeout: 3)
        } else {
            // Read until the server closes (or a quiet deadline for lenient keep-alive cases).
            await client.read(timeout: vector.valid ? 3 : 2.5)
        }
        let responses = client.responses(heads: heads)
        let statuses = responses.map(\.head.status)
        let allowed = Set(vector.also_ok ?? [])
        let label = "\(vector.name): statuses \(statuses) closed=\(client.closed)"

        if vector.valid {
            #expect(statuses.count >= expected, "\(label)")
            for s in statuses.prefix(expected) {
                #expect(allowed.contains(s) || (s != 400 && s < 500), "\(label)")
            }
            if vector.expect_close == true { #expect(client.closed, "\(label)") }
            if vector.head == true, let first = responses.first {
                #expect(first.body.isEmpty, "\(label)")
                #expect(first.head.headers["Content-Length"] == "15", "\(label)")
            }
        } else if vector.lenient == true {
            for s in statuses { #expect(s < 500 || s == 501 || s == 505, "\(label)") }
            if let max = vector.max_responses { #expect(statuses.count <= max, "\(label)") }
        } else {
            for s in statuses {
                #expect(!(200..<300).contains(s), "\(label)")
                #expect((400..<500).contains(s) || s == 501 || s == 505, "\(label)")
            }
            #expect(!statuses.isEmpty || client.closed, "\(label)")
        }
        if vector.must_close == true { #expect(client.closed, "\(label)") }

        // The server still answers.
        let probe = try await RawClient.connect(port: port)
        await probe.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        let answer = await probe.readResponses(1)
        #expect(answer.first?.head.status == 200, "\(vector.name): server no longer answers")
    }
}
