import CZlib

/// Incremental gzip decompression: fed compressed pieces, returns what they decompress to.
/// Several gzip members one after the other (`cat a.gz b.gz`, RFC 1952 section 2.2) decompress
/// to their contents one after the other, as `gzip -d` reads them; bytes after a member that do
/// not start another are corrupt data.
///
/// Memory is one zlib state and one 64 KiB work buffer whatever the ratio of the input (a gzip
/// bomb is stopped by the caller's byte count, never held whole). Used for request bodies too
/// large to hold (an import), read piece by piece.
public final class GzipDecoder {
    private let stream: UnsafeMutablePointer<z_stream>
    private var piece = [UInt8](repeating: 0, count: 64 * 1024)
    /// Whether the last gzip member ended (no member is under way).
    public private(set) var isFinished = false

    /// Creates a decoder.
    /// - Throws: ``GzipError/initFailed(code:)``.
    public init() throws(GzipError) {
        stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let rc = czlib_inflateInit2(stream, 31)
        guard rc == Z_OK else {
            stream.deinitialize(count: 1)
            stream.deallocate()
            throw .initFailed(code: rc)
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Input given by ``feed(_:)`` and not yet consumed by zlib.
    private var input: [UInt8] = []
    private var inputOffset = 0

    /// Whether the last piece filled the work buffer: zlib may hold more output even with no
    /// input left.
    private var outputPending = false

    /// Whether all input given so far has been consumed and its output taken (``next()`` needs more).
    public var needsInput: Bool { inputOffset >= input.count && !outputPending }

    /// Gives the decoder more compressed bytes (only when ``needsInput``).
    public func feed(_ bytes: [UInt8]) {
        input = bytes
        inputOffset = 0
    }

    /// The next decompressed piece (at most 64 KiB), or `nil` when the input fed so far is used up
    /// (or the member ended). Pull-based, so a caller holds one piece at a time whatever the
    /// compression ratio.
    /// - Throws: ``GzipError/corrupt(code:)`` for bad data or data after the end of the member.
    public func next() throws(GzipError) -> [UInt8]? {
        if needsInput { return nil }
        if isFinished {
            // More input after a member's end: the next member.
            inflateReset(stream)
            isFinished = false
        }
        let pieceSize = piece.count
        let available = input.count - inputOffset
        let (code, produced, consumed): (Int32, Int, Int) = input.withUnsafeBufferPointer { inBuf in
            piece.withUnsafeMutableBufferPointer { p in
                stream.pointee.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress.map { $0 + inputOffset })
                stream.pointee.avail_in = uInt(available)
                stream.pointee.next_out = p.baseAddress
                stream.pointee.avail_out = uInt(pieceSize)
                let code = inflate(stream, Z_NO_FLUSH)
                return (code, pieceSize - Int(stream.pointee.avail_out), available - Int(stream.pointee.avail_in))
            }
        }
        inputOffset += consumed
        outputPending = produced == pieceSize
        switch code {
        case Z_STREAM_END:
            isFinished = true
            outputPending = false
        case Z_OK, Z_BUF_ERROR:
            if produced == 0 && consumed == 0 {
                // No progress: with input left the data is broken; without, zlib simply had
                // nothing more to give.
                if inputOffset < input.count { throw .corrupt(code: code) }
                outputPending = false
                return nil
            }
        default:
            throw .corrupt(code: code)
        }
        return Array(piece[0..<produced])
    }

    /// Checks that the member ended (a truncated input is corrupt).
    /// - Throws: ``GzipError/corrupt(code:)``.
    public func finish() throws(GzipError) {
        if !isFinished { throw .corrupt(code: Z_BUF_ERROR) }
    }
}

/// Incremental gzip compression for a streamed response body.
public final class GzipEncoder {
    private let stream: UnsafeMutablePointer<z_stream>
    private var piece = [UInt8](repeating: 0, count: 64 * 1024)

    /// Creates an encoder.
    /// - Parameter level: zlib level 1...9 (1: fast, for large streamed bodies).
    /// - Throws: ``GzipError/initFailed(code:)``.
    public init(level: Int32 = 1) throws(GzipError) {
        stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let rc = czlib_deflateInit2(stream, level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY)
        guard rc == Z_OK else {
            stream.deinitialize(count: 1)
            stream.deallocate()
            throw .initFailed(code: rc)
        }
    }

    deinit {
        deflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Compresses `input`; returns the compressed bytes ready so far (possibly none).
    public func encode(_ input: [UInt8]) -> [UInt8] { run(input, flush: Z_NO_FLUSH) }

    /// Ends the member; returns the remaining compressed bytes and the gzip trailer.
    public func finish() -> [UInt8] { run([], flush: Z_FINISH) }

    private func run(_ input: [UInt8], flush: Int32) -> [UInt8] {
        var out: [UInt8] = []
        let pieceSize = piece.count
        input.withUnsafeBufferPointer { inBuf in
            stream.pointee.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
            stream.pointee.avail_in = uInt(inBuf.count)
            while true {
                let (code, produced): (Int32, Int) = piece.withUnsafeMutableBufferPointer { p in
                    stream.pointee.next_out = p.baseAddress
                    stream.pointee.avail_out = uInt(pieceSize)
                    let code = deflate(stream, flush)
                    return (code, pieceSize - Int(stream.pointee.avail_out))
                }
                out.append(contentsOf: piece[0..<produced])
                if code == Z_STREAM_END { return }
                if flush == Z_NO_FLUSH && stream.pointee.avail_in == 0 && produced < pieceSize { return }
                if code != Z_OK && code != Z_BUF_ERROR { return }
            }
        }
        return out
    }
}
