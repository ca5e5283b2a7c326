import Testing
@testable import MinkConfig

@Suite(.timeLimit(.minutes(3))) struct TokenHashTests {
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

    @Test func paddingBoundary() {
        // 64 bytes: a whole block plus a padding block (the hash itself is swift-crypto's; this
        // pins that hashToken hashes the UTF-8 and prints lowercase hex).
        #expect(hashToken(String(repeating: "a", count: 64)) == "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb")
        #expect(hashToken("é") == "4a99557e4033c3539de2eb65472017cad5f9557f7a0625a09f1c3f6e2ba69c4c")
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
