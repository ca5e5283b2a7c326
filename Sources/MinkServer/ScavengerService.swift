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

    /// One pass over every tenant.
    func pass() async {
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
