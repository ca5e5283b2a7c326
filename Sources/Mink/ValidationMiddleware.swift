/// Rejects appends whose events have no type, a too-long type, data that is not JSON, or data
/// over the size limit, and appends with too many events (seed: `ValidationMiddleware`).
///
/// A middleware of appends only: reads carry nothing to validate.
public struct ValidationMiddleware: MiddlewareProtocol {
    /// The limits checked.
    public struct Limits: Sendable, Hashable {
        /// The longest event type name, in bytes.
        public var maxTypeBytes: Int
        /// The largest event payload, in bytes.
        public var maxEventBytes: Int
        /// The most events in one append.
        public var maxEventsPerAppend: Int

        /// Creates limits; defaults follow minkd's: 256 bytes, 1 MiB, 1,000 events.
        public init(maxTypeBytes: Int = 256, maxEventBytes: Int = 1 << 20, maxEventsPerAppend: Int = 1000) {
            self.maxTypeBytes = maxTypeBytes
            self.maxEventBytes = maxEventBytes
            self.maxEventsPerAppend = maxEventsPerAppend
        }
    }

    /// The limits checked.
    public let limits: Limits

    /// Creates the middleware.
    public init(_ limits: Limits = Limits()) { self.limits = limits }

    public func handle(
        _ command: AppendCommand, context: CommandContext, next: CommandHandler<AppendCommand>
    ) async throws -> AppendResult {
        if command.events.count > limits.maxEventsPerAppend {
            throw MinkError.validation("an append may hold at most \(limits.maxEventsPerAppend) events, got \(command.events.count)")
        }
        for (i, e) in command.events.enumerated() {
            if e.type.isEmpty { throw MinkError.validation("events[\(i)].type must not be empty") }
            if e.type.utf8.count > limits.maxTypeBytes {
                throw MinkError.validation("events[\(i)].type is longer than \(limits.maxTypeBytes) bytes")
            }
            if e.data.count > limits.maxEventBytes {
                throw MinkError.validation("events[\(i)].data is larger than \(limits.maxEventBytes) bytes")
            }
            do { _ = try JSONValue(json: e.data) } catch {
                throw MinkError(
                    .serializationFailed, "events[\(i)].data is not serializable JSON: \((error as? MinkError)?.message ?? "\(error)")",
                    underlying: error
                )
            }
        }
        return try await next(command, context)
    }
}
