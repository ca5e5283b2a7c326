/// Byte classification tables for the parsers (RFC 9110 5.6.2 `tchar`, field values).
enum ByteClass {
    static let cr: UInt8 = 0x0D
    static let lf: UInt8 = 0x0A
    static let sp: UInt8 = 0x20
    static let htab: UInt8 = 0x09
    static let colon: UInt8 = 0x3A

    /// `tchar`: the characters of a token (method, field name).
    static let token: [Bool] = {
        var t = [Bool](repeating: false, count: 256)
        for b in UInt8(ascii: "0")...UInt8(ascii: "9") { t[Int(b)] = true }
        for b in UInt8(ascii: "a")...UInt8(ascii: "z") { t[Int(b)] = true }
        for b in UInt8(ascii: "A")...UInt8(ascii: "Z") { t[Int(b)] = true }
        for c in "!#$%&'*+-.^_`|~".utf8 { t[Int(c)] = true }
        return t
    }()

    /// Bytes allowed inside a field value: HTAB, SP, VCHAR, obs-text.
    static let fieldValue: [Bool] = {
        var t = [Bool](repeating: false, count: 256)
        t[0x09] = true
        for b in 0x20...0x7E { t[b] = true }
        for b in 0x80...0xFF { t[b] = true }
        return t
    }()

    @inline(__always) static func isToken(_ b: UInt8) -> Bool { token[Int(b)] }

    /// Visible ASCII, the bytes a request target may hold.
    @inline(__always) static func isTargetByte(_ b: UInt8) -> Bool { b > 0x20 && b < 0x7F }

    @inline(__always) static func hexValue(_ b: UInt8) -> Int? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(b - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(b - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(b - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }
}

extension String {
    /// Decodes bytes as UTF-8, replacing invalid sequences (obs-text stays visible as U+FFFD).
    @inline(__always) init(_ bytes: ArraySlice<UInt8>) {
        self = String(decoding: bytes, as: UTF8.self)
    }
}
