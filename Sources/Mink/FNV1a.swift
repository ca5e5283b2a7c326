/// FNV-1a, 64 bits: a hash that is the same in every process and release (Swift's `Hasher` is
/// seeded per process), for names derived from user input — index and schema names, advisory
/// lock keys, projection worker partitions, UUIDs for non-UUID event IDs.
///
/// Not for security: anyone can make two strings collide.
public enum FNV1a {
    /// The 64-bit offset basis.
    public static let offsetBasis64: UInt64 = 0xcbf2_9ce4_8422_2325
    /// The 64-bit prime.
    public static let prime64: UInt64 = 0x0000_0100_0000_01b3

    /// The hash of `text`'s UTF-8 bytes.
    public static func hash64(_ text: String) -> UInt64 {
        var h = offsetBasis64
        for b in text.utf8 { h = (h ^ UInt64(b)) &* prime64 }
        return h
    }
}
