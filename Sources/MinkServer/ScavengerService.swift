import Logging
import Mink
import ServiceLifecycle

/// Removes from storage, every `retention.scavengeIntervalSeconds`, the events that streams'
/// retention rules exclude — tenant by tenant, in batches (``EventStore/scavenge(batchSize:)``),
/// so that appends keep flowing. Runs until the group's graceful shutdown; a failed pass is
/// logged and tried again at the next interval.
public struct ScavengerService: Service, CustomStringConvertible {
    let server: MinkServer
    let interval: Duration

    public var description: String { "minkd.scavenger" }

    /// A scavenger for a server's tenants, with the server's configured interval.
    public init(server: MinkServer) {
        self.server = server
        self.interval = .seconds(server.configuration.retention.scavengeIntervalSeconds)
    }

    public func run() async throws {
        let interval = self.interval
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            // The wait ends early, with a cancellation error, at the group's graceful shutdown.
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
            await pass()
        }
    }

    /// The lease a timed pass takes first when several processes share the storage: one of them
    /// scavenges at a time (`projection` names that start with `$` are not projections').
    static let lease = (tenant: TenantID.default, name: "$scavenger")

    /// One timed pass over every tenant — skipped when another process sharing the storage is
    /// running its own (it holds ``lease``): every process used to scavenge the same rules at the
    /// same time, each deleting what the others were deleting and waiting on their row locks.
    /// (`POST /v1/admin/scavenge` runs a pass of its own whatever the lease.)
    func pass() async {
        let leases = server.api.projections.leases
        guard !(leases is LocalProjectionLeaseProvider) else { return await scavengeEveryTenant() }
        let lease: (any ProjectionLease)?
        do { lease = try await leases.tryAcquire(tenant: Self.lease.tenant, projection: Self.lease.name) } catch {
            server.api.logger.warning("scavenger: cannot take the scavenger's lease; this pass is skipped", metadata: ["error": "\(error)"])
            return
        }
        guard let lease else {
            server.api.logger.debug("scavenger: another process is scavenging; this pass is skipped")
            return
        }
        await scavengeEveryTenant()
        await lease.release()
    }

    private func scavengeEveryTenant() async {
        let api = server.api
        let tenants: [String]
        do { tenants = try await api.tenants.catalog.tenants() } catch {
            api.logger.warning("scavenger: cannot list tenants", metadata: ["error": "\(error)"])
            return
        }
        for tenant in tenants {
            if Task.isShuttingDownGracefully { return }
            do {
                let removed = try await api.store.forTenant(tenant).scavenge()
                if removed > 0 {
                    api.logger.info("scavenger: removed events", metadata: ["mink.tenant": "\(tenant)", "events": "\(removed)"])
                }
            } catch {
                api.logger.warning("scavenger: pass failed", metadata: ["mink.tenant": "\(tenant)", "error": "\(error)"])
            }
        }
    }
}
