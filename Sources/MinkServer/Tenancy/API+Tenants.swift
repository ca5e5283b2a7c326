import Mink
import MinkHTTP
import MinkWire

extension API {
    /// Section 9: `GET`/`POST /v1/admin/tenants`, `DELETE /v1/admin/tenants/{id}?confirm={id}`.
    func tenantAdministration(_ c: RequestContext) async throws -> HTTPResponse {
        switch c.route {
        case .listTenants:
            let ids = try await tenants.list()
            return Reply.json(TenantListBody(tenants: ids.map { TenantBody(id: $0) }))
        case .createTenant:
            try requireJSON(c)
            let body = try TenantBody.decode(c.request.body)
            let created = try await tenants.create(body.id)
            logger.notice("tenant created", metadata: c.logMetadata)
            return Reply.json(TenantBody(id: body.id), status: created ? 201 : 200)
        case .deleteTenant(let id):
            guard (try? TenantID.validate(id)) != nil else {
                throw APIError(.invalidTenant, "invalid tenant ID in the path: it must match ^[a-z0-9][a-z0-9_-]{0,62}$")
            }
            guard c.query["confirm"] == id else {
                throw APIError(.badRequest, "deleting a tenant removes all its data: repeat its ID as ?confirm={id}")
            }
            guard id != TenantID.default else { throw APIError(.badRequest, "the default tenant cannot be deleted") }
            // The tenant's projections hold its storage open: stop them first, and again after
            // (a request during the deletion may have started them).
            await projections.tenantRemoved(id)
            let deleted = try await tenants.delete(id)
            await projections.tenantRemoved(id)
            guard deleted else { throw APIError(.notFound, "no such tenant") }
            logger.notice("tenant deleted", metadata: c.logMetadata)
            return Reply.json(TenantBody(id: id))
        default:
            throw APIError.noSuchEndpoint("no such endpoint")
        }
    }
}
