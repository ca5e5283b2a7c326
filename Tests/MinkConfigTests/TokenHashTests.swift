import Testing
@testable import MinkConfig

@Suite struct SHA256Tests {
    @Test(arguments: [
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        ("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
    ])
    func fipsVectors(_ message: String, _ digest: String) {
        #expect(hashToken(message) == digest)
    }

    @Test func millionAs() {
        var hasher = SHA256()
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        for _ in 0..<1000 { hasher.update(chunk) }
        #expect(SHA256.hex(hasher.finalize()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func paddingBoundaries() {
        // Lengths around the 55/56/64-byte padding edges, checked against each other
        // through incremental updates (one byte at a time must equal one call).
        for length in [55, 56, 57, 63, 64, 65, 119, 120, 128] {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            var incremental = SHA256()
            for byte in bytes { incremental.update([byte]) }
            #expect(incremental.finalize() == SHA256.hash(bytes))
        }
        #expect(hashToken(String(repeating: "a", count: 64)) == "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb")
    }

    @Test func constantTimeComparison() {
        #expect(constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!constantTimeEquals([1, 2, 3], [1, 2]))
        #expect(constantTimeEquals("abc", "abc"))
        #expect(!constantTimeEquals("abc", "abd"))
        #expect(constantTimeEquals([], []))
    }

    @Test func findsTokensByPlaintext() throws {
        var auth = MinkdConfiguration.Auth()
        auth.tokens = [
            .init(name: "a", sha256: hashToken("secret-a"), tenant: "acme", roles: [.read]),
            .init(name: "b", sha256: hashToken("secret-b"), tenant: "*", roles: [.admin]),
        ]
        #expect(auth.token(matching: "secret-b")?.name == "b")
        #expect(auth.token(matching: "secret-a")?.tenant == "acme")
        #expect(auth.token(matching: "secret-c") == nil)
        #expect(auth.token(matching: "") == nil)
    }
}
