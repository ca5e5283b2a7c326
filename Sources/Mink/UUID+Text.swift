import Foundation

extension UUID {
    /// The UUID as lowercase text (`6ba7b810-9dad-11d1-80b4-00c04fd430c8`), the form event IDs are
    /// stored and compared in — what `uuidString.lowercased()` gives, written by hand.
    ///
    /// Why by hand: Foundation formats `uuidString` with `snprintf`, and then `lowercased()`
    /// copies it again; for 100-event appends, formatting the generated IDs that way was ~7% of the
    /// server's CPU (perf).
    public var lowercasedText: String {
        withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { out in
                // One hex digit per nibble; a dash before bytes 4, 6, 8 and 10 (8-4-4-4-12).
                func hex(_ n: UInt8) -> UInt8 { n < 10 ? 0x30 + n : 0x57 + n }
                var j = 0
                for i in 0..<16 {
                    if i == 4 || i == 6 || i == 8 || i == 10 {
                        out[j] = UInt8(ascii: "-")
                        j += 1
                    }
                    out[j] = hex(bytes[i] >> 4)
                    out[j + 1] = hex(bytes[i] & 0x0F)
                    j += 2
                }
                return j
            }
        }
    }
}
