/// Rules for stream IDs (HTTP-API.md section 4).
public enum StreamID {
    /// The longest stream ID, in UTF-8 bytes.
    public static let maxBytes = 256

    /// Checks a stream ID: 1 to 256 bytes of UTF-8 without control characters.
    /// - Throws: `WireError` with code `invalid_stream_id`.
    public static func validate(_ id: String) throws {
        let count = id.utf8.count
        guard count > 0 else { throw WireError(code: .invalidStreamID, message: "stream ID must not be empty") }
        guard count <= maxBytes else {
            throw WireError(code: .invalidStreamID, message: "stream ID is \(count) bytes, longer than \(maxBytes)")
        }
        for scalar in id.unicodeScalars where scalar.properties.generalCategory == .control {
            throw WireError(
                code: .invalidStreamID,
                message: "stream ID contains the control character U+\(String(scalar.value, radix: 16, uppercase: true).leftPadded(4))"
            )
        }
    }

    /// The category of a stream: the part of its ID before the first `-`
    /// (`order-123` → `order`); an ID without `-` is its own category.
    public static func category(of id: String) -> String {
        guard let dash = id.firstIndex(of: "-") else { return id }
        return String(id[..<dash])
    }
}

/// Rules for tenant IDs (HTTP-API.md section 2).
public enum TenantID {
    /// The tenant of a request that names none.
    public static let `default` = "default"

    /// Whether `id` matches `^[a-z0-9][a-z0-9_-]{0,62}$`.
    public static func isValid(_ id: String) -> Bool {
        let bytes = Array(id.utf8)
        guard (1...63).contains(bytes.count) else { return false }
        for (index, byte) in bytes.enumerated() {
            let alphanumeric = (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
            if index == 0 {
                guard alphanumeric else { return false }
            } else {
                guard alphanumeric || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") else { return false }
            }
        }
        return true
    }

    /// Checks a tenant ID.
    /// - Throws: `WireError` with code `invalid_tenant`.
    public static func validate(_ id: String) throws {
        guard isValid(id) else {
            throw WireError(code: .invalidTenant, message: "invalid tenant ID \"\(id)\": must match ^[a-z0-9][a-z0-9_-]{0,62}$")
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
