import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

extension UUID {
    /// A random (version 4) UUID from the system's random source, drawn from a buffer of random
    /// bytes that one `getrandom` call refills every 256 UUIDs.
    ///
    /// Why not `UUID()`: Foundation's opens, reads and closes `/dev/urandom` for every UUID (three
    /// system calls, the open with a path lookup): ~2.5 % of the server's CPU when every append
    /// generates its event ID (perf, SQLite, 64 clients). Why a buffer: `SystemRandomNumberGenerator`
    /// makes one `getrandom` call per 8 bytes, two per UUID — 200 system calls for a 100-event
    /// append, ~4 % of the server's CPU there (perf, SQLite, 16 clients). The bytes are as random
    /// (the kernel's CSPRNG); event IDs are not secrets, they only must not repeat.
    public static func random() -> UUID {
        var bytes = randomPool.withLock { $0.take() }
        return withUnsafeMutableBytes(of: &bytes) { raw in
            raw[6] = raw[6] & 0x0F | 0x40  // version 4
            raw[8] = raw[8] & 0x3F | 0x80  // variant 10 (RFC 9562)
            return UUID(uuid: (raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7],
                               raw[8], raw[9], raw[10], raw[11], raw[12], raw[13], raw[14], raw[15]))
        }
    }
}

/// Random bytes for ``UUID/random()``: 4 KiB from the kernel at a time, each 16 bytes handed out
/// once.
private let randomPool = Mutex(RandomPool())

private struct RandomPool: ~Copyable {
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
    private var next = 4096

    deinit { buffer.deallocate() }

    mutating func take() -> (UInt64, UInt64) {
        if next + 16 > buffer.count {
            arc4random_buf(buffer.baseAddress!, buffer.count)
            next = 0
        }
        defer { next += 16 }
        return (buffer.load(fromByteOffset: next, as: UInt64.self), buffer.load(fromByteOffset: next + 8, as: UInt64.self))
    }
}

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
