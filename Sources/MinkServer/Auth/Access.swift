import MinkConfig

/// What a route asks of the caller (HTTP-API.md section 2): no token, or a token with a role.
enum RequiredAccess: Sendable, Equatable {
    /// Open to anyone (`/healthz`, `/readyz`, `/metrics` unless `metrics.requireToken`).
    case open
    /// A token with this role.
    case role(MinkdConfiguration.Token.Role)
}

/// How a route uses its tenant, which decides what happens when the tenant does not exist yet.
enum TenantUse: Sendable, Equatable {
    /// Tenant-independent (operations, server info, tenant administration).
    case none
    /// Reads the tenant's data: an unknown tenant answers as an empty one (with `autoCreate`)
    /// or `404` (without), and is never created by the read.
    case read
    /// Writes the tenant's data: an unknown tenant is created first (with `autoCreate`) or `404`.
    case write
    /// Changes only what the tenant already has (a stream deletion, a scavenge): admitted as a
    /// read — an unknown tenant is `404` without `autoCreate` and never created — and the handler
    /// takes its write lease with ``TenantRouter/admitExisting(_:)``, which answers `nil` for a
    /// tenant that does not exist: the handler then answers as for an empty tenant without
    /// touching storage (whose writes would create the tenant's file, schema or database).
    case modify
}

extension Route {
    /// The role a route needs: `read` for every GET, SSE and read-model query; `write` for
    /// appends and snapshot PUTs; `admin` for `/v1/admin/*` and projection control.
    func requiredAccess(metricsRequireToken: Bool) -> RequiredAccess {
        switch self {
        case .healthz, .readyz, .openAPI, .consoleRoot, .console: .open
        case .metrics: metricsRequireToken ? .role(.read) : .open
        case .info, .load, .streamInfo, .getSnapshot, .events, .head, .subscribeAll, .subscribeCategory, .subscribeStream,
            .listProjections, .projection, .readModelDocument, .readModelList, .readModelQuery, .readModelCount,
            .listStreams, .getStreamMetadata:
            .role(.read)
        case .append, .putSnapshot, .deleteStream, .putStreamMetadata: .role(.write)
        case .rebuildProjection, .pauseProjection, .resumeProjection, .listTenants, .createTenant, .deleteTenant, .scavenge: .role(.admin)
        case .export, .importEvents: .role(.admin)
        }
    }

    /// How the route uses the request's tenant.
    var tenantUse: TenantUse {
        switch self {
        case .healthz, .readyz, .metrics, .info, .listTenants, .createTenant, .deleteTenant, .openAPI, .consoleRoot, .console: .none
        case .append, .putSnapshot, .importEvents, .putStreamMetadata: .write
        case .deleteStream, .scavenge: .modify
        case .export, .listStreams, .getStreamMetadata: .read
        case .load, .streamInfo, .getSnapshot, .events, .head, .subscribeAll, .subscribeCategory, .subscribeStream,
            .listProjections, .projection, .rebuildProjection, .pauseProjection, .resumeProjection,
            .readModelDocument, .readModelList, .readModelQuery, .readModelCount:
            .read
        }
    }

    /// Whether the route writes the tenant's data (an append, a deletion, a snapshot, …).
    var writes: Bool { tenantUse == .write || tenantUse == .modify }

    /// Whether the route administers tenants (and so needs a token valid for every tenant).
    var isTenantAdministration: Bool {
        switch self {
        case .listTenants, .createTenant, .deleteTenant: true
        default: false
        }
    }

    /// Whether the route shows or changes what spans every tenant — tenant administration and
    /// the process's metrics (appends, requests, projections of all tenants together) — and so
    /// needs, when it needs a token at all, one valid for every tenant, and runs in no tenant
    /// (`Mink-Tenant` is ignored). A tenant-bound token read other tenants' activity from
    /// `/metrics` before (a black-box audit, 2026-12-07).
    var spansTenants: Bool {
        switch self {
        case .metrics: true
        default: isTenantAdministration
        }
    }
}
