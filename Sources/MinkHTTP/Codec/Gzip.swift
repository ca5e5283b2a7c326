import CZlib

/// Errors from ``Gzip``.
public enum GzipError: Error, Sendable, Equatable {
    /// The decompressed data would exceed the given limit (a gzip bomb or just too big).
    case tooLarge(limit: Int)
    /// The input is not valid gzip data (zlib's return code).
    case corrupt(code: Int32)
    /// zlib could not be initialised.
    case initFailed(code: Int32)
}

/// gzip compression through zlib (`windowBits` 31: gzip header and trailer).
public enum Gzip {
    /// Compresses `input` into a gzip member.
    /// - Parameter level: zlib level 1...9 (default 6; 1 is much faster for large bodies).
    public static func compress(_ input: [UInt8], level: Int32 = 6) throws(GzipError) -> [UInt8] {
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer { stream.deinitialize(count: 1); stream.deallocate() }
        let rc = czlib_deflateInit2(stream, level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY)
        guard rc == Z_OK else { throw .initFailed(code: rc) }
        defer { deflateEnd(stream) }
        let bound = Int(deflateBound(stream, uLong(input.count)))
        var output = [UInt8](repeating: 0, count: bound)
        let result: Int32 = input.withUnsafeBufferPointer { inBuf in
            output.withUnsafeMutableBufferPointer { outBuf in
                stream.pointee.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
                stream.pointee.avail_in = uInt(inBuf.count)
                stream.pointee.next_out = outBuf.baseAddress
                stream.pointee.avail_out = uInt(outBuf.count)
                return deflate(stream, Z_FINISH)
            }
        }
        guard result == Z_STREAM_END else { throw .corrupt(code: result) }
        output.removeLast(Int(stream.pointee.avail_out))
        return output
    }

    /// Decompresses gzip data — one member, or several one after the other (their contents in
    /// order; bytes after a member that do not start another are corrupt, zero padding included)
    /// — stopping as soon as the output exceeds `limit`.
    ///
    /// Memory use is bounded by `limit` plus one 64 KiB work buffer, whatever the
    /// compression ratio of the input: the output is produced in pieces and the
    /// check happens before each piece is kept.
    /// - Throws: ``GzipError/tooLarge(limit:)`` past the limit, ``GzipError/corrupt(code:)``
    ///   for bad or truncated data.
    public static func decompress(_ input: [UInt8], limit: Int) throws(GzipError) -> [UInt8] {
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer { stream.deinitialize(count: 1); stream.deallocate() }
        let rc = czlib_inflateInit2(stream, 31)
        guard rc == Z_OK else { throw .initFailed(code: rc) }
        defer { inflateEnd(stream) }
        var output: [UInt8] = []
        output.reserveCapacity(min(limit, max(input.count * 4, 1024)))
        let pieceSize = 64 * 1024
        var piece = [UInt8](repeating: 0, count: pieceSize)
        var failure: GzipError?
        input.withUnsafeBufferPointer { inBuf in
            stream.pointee.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
            stream.pointee.avail_in = uInt(inBuf.count)
            while true {
                let (code, produced): (Int32, Int) = piece.withUnsafeMutableBufferPointer { p in
                    stream.pointee.next_out = p.baseAddress
                    stream.pointee.avail_out = uInt(pieceSize)
                    let code = inflate(stream, Z_NO_FLUSH)
                    return (code, pieceSize - Int(stream.pointee.avail_out))
                }
                if output.count + produced > limit {
                    failure = .tooLarge(limit: limit)
                    return
                }
                output.append(contentsOf: piece[0..<produced])
                switch code {
                case Z_STREAM_END where stream.pointee.avail_in > 0:
                    // Another member follows (`cat a.gz b.gz`): decompressed after this one.
                    inflateReset(stream)
                    continue
                case Z_STREAM_END:
                    return
                case Z_OK:
                    continue
                case Z_BUF_ERROR where produced > 0:
                    continue
                default:
                    // Z_BUF_ERROR without progress means the input ended mid-stream.
                    failure = .corrupt(code: code)
                    return
                }
            }
        }
        if let failure { throw failure }
        return output
    }

    /// Whether an `Accept-Encoding` value allows gzip (`gzip` or `*` with q > 0;
    /// an explicit `gzip;q=0` wins over `*`).
    public static func isAccepted(by acceptEncoding: String?) -> Bool {
        guard let acceptEncoding else { return false }
        var star: Bool?
        for part in acceptEncoding.split(separator: ",") {
            let pieces = part.split(separator: ";")
            guard let first = pieces.first else { continue }
            let coding = trimOWS(first)
            var q = 1.0
            for param in pieces.dropFirst() {
                let p = trimOWS(param)
                if p.count > 2, asciiCaseInsensitiveEquals(p.prefix(2), "q=") {
                    q = Double(p.dropFirst(2)) ?? 0
                }
            }
            if asciiCaseInsensitiveEquals(coding, "gzip") || asciiCaseInsensitiveEquals(coding, "x-gzip") {
                return q > 0
            }
            if coding == "*" { star = q > 0 }
        }
        return star ?? false
    }
}
