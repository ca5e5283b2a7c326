import Crypto

/// The SHA-256 of a token as lowercase hex: what `minkd hash-token` prints and
/// what `auth.tokens[].sha256` holds.
///
/// Tokens are configured as SHA-256 hashes, never in plaintext; the server hashes a presented
/// bearer token and compares hashes with ``constantTimeEquals(_:_:)-([UInt8],[UInt8])``. The hash
/// is swift-crypto's (BoringSSL on Linux, CryptoKit on Apple platforms), not our own.
public func hashToken(_ token: String) -> String {
    let digest = SHA256.hash(data: Array(token.utf8))
    let digits = Array("0123456789abcdef".utf8)
    var output: [UInt8] = []
    output.reserveCapacity(SHA256.byteCount * 2)
    for byte in digest {
        output.append(digits[Int(byte >> 4)])
        output.append(digits[Int(byte & 0x0F)])
    }
    return String(decoding: output, as: UTF8.self)
}

/// Compares two byte sequences in time that depends only on their lengths,
/// never on where they first differ (so response timing leaks nothing about a
/// configured token hash).
public func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    guard lhs.count == rhs.count else { return false }
    var difference: UInt8 = 0
    for index in 0..<lhs.count { difference |= lhs[index] ^ rhs[index] }
    return difference == 0
}

/// Compares the UTF-8 of two strings in constant time (see the byte version).
public func constantTimeEquals(_ lhs: String, _ rhs: String) -> Bool {
    constantTimeEquals(Array(lhs.utf8), Array(rhs.utf8))
}
