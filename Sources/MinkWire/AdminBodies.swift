import Mink

/// A tenant (HTTP-API.md section 9): the body of `POST /v1/admin/tenants` and
/// an element of the tenant list.
public struct TenantBody: Codable, Hashable, Sendable, JSONWritable {
    /// The tenant ID.
    public var id: String

    /// Creates the body.
    public init(id: String) {
        self.id = id
    }

    /// Writes `{"id":"…"}`.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("id")
        writer.string(id)
        writer.endObject()
    }

    /// Reads and checks a `POST /v1/admin/tenants` body.
    /// - Throws: `WireError`: `invalid_json`, `bad_request` (shape, unknown key),
    ///   `validation_failed` (no `id`), `invalid_tenant` (an ID that breaks the pattern).
    public static func decode(_ body: [UInt8]) throws -> TenantBody {
        var reader = JSONReader(body)
        var id: String?
        try reader.readObject(at: "", rejectUnknown: true) { reader, key, _ in
            guard key == "id" else { return false }
            id = try reader.readString()
            return true
        }
        try reader.finishBody()
        guard let id else { throw missingKey("id", code: .validationFailed) }
        guard TenantID.isValid(id) else {
            throw WireError(code: .invalidTenant, message: "invalid tenant ID \"\(id)\": must match ^[a-z0-9][a-z0-9_-]{0,62}$")
        }
        return TenantBody(id: id)
    }
}

/// The body of `GET /v1/admin/tenants`: `{"tenants": [{"id": "acme"}, ...]}`.
public struct TenantListBody: Codable, Hashable, Sendable, JSONWritable {
    /// The tenants.
    public var tenants: [TenantBody]

    /// Creates the body.
    public init(tenants: [TenantBody]) {
        self.tenants = tenants
    }

    /// Writes the body.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("tenants")
        writer.beginArray()
        for tenant in tenants { tenant.write(to: &writer) }
        writer.endArray()
        writer.endObject()
    }
}
