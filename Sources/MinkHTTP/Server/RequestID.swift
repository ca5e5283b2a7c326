import Synchronization

/// Generates `X-Request-ID` values: 16 hex digits from a random per-process prefix
/// and a counter, unique within the process and cheap (no locks, no allocation
/// beyond the string).
public enum RequestID {
    private static let prefix = UInt64.random(in: 0...UInt64.max) & 0xFFFF_FFFF_0000_0000
    private static let counter = Atomic<UInt64>(0)

    /// A new request ID such as `3fa2c01b00000001`.
    public static func generate() -> String {
        let n = counter.wrappingAdd(1, ordering: .relaxed).newValue
        let v = prefix | (n & 0xFFFF_FFFF)
        // 16 lowercase hex digits, zero-padded, written straight into the string.
        return String(unsafeUninitializedCapacity: 16) { buffer in
            for i in 0..<16 {
                let nibble = UInt8(truncatingIfNeeded: v >> UInt64(60 - 4 * i)) & 0xF
                buffer[i] = nibble < 10 ? 0x30 + nibble : 0x57 + nibble
            }
            return 16
        }
    }

    /// The client's `X-Request-ID` if it is a sane token (1–128 visible ASCII
    /// characters), otherwise a generated one.
    public static func from(_ request: HTTPRequest) -> String {
        sanitized(request.headers["X-Request-ID"]) ?? generate()
    }

    /// An `X-Request-ID` value if it is a sane token (1–128 visible ASCII characters).
    public static func sanitized(_ value: String?) -> String? {
        guard let id = value, !id.isEmpty, id.utf8.count <= 128, id.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            return nil
        }
        return id
    }
}
