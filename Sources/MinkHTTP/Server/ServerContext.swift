import Synchronization

/// What every connection of one server shares: configuration, responder, counters.
final class ServerContext: Sendable {
    let configuration: HTTPServerConfiguration
    let connectionConfiguration: HTTPConnectionStateMachine.Configuration
    let responder: any HTTPResponder
    let log: (@Sendable (String) -> Void)?
    let openConnections = Atomic<Int>(0)
    let totalConnections = Atomic<Int>(0)
    let rejectedConnections = Atomic<Int>(0)
    let totalRequests = Atomic<Int>(0)
    let activeStreams = Atomic<Int>(0)
    let shuttingDown = Atomic<Bool>(false)

    init(configuration: HTTPServerConfiguration, responder: any HTTPResponder, log: (@Sendable (String) -> Void)?) {
        self.configuration = configuration
        self.connectionConfiguration = configuration.connectionConfiguration
        self.responder = responder
        self.log = log
    }

    /// Reports a transport-level problem (a failed `accept`, `epoll_ctl` or `epoll_wait`, an
    /// illegal connection transition) to the server's `log`; without one, to standard error,
    /// so that it is never lost silently.
    @Sendable func report(_ message: String) {
        if let log {
            log(message)
        } else {
            writeLineToStandardError(message)
        }
    }
}
