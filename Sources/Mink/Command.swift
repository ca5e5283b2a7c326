/// Which store operation a command is: the name logs, metrics and spans use.
public enum StoreOperation: String, Sendable, Hashable {
    /// ``AppendCommand``.
    case append
    /// ``LoadCommand``: one page of a stream.
    case load
    /// ``StreamInfoCommand``.
    case streamInfo
    /// ``ReadAllCommand``: one page of the global log.
    case readAll
    /// ``HeadPositionCommand``.
    case headPosition
}

/// A store operation as middleware sees it (seed: `Command`): the conforming value is the
/// operation's input and ``Output`` the type of its result, so a middleware chain is typed end to
/// end — a step cannot hand back the result of another operation.
///
/// The five commands are ``AppendCommand``, ``LoadCommand``, ``StreamInfoCommand``,
/// ``ReadAllCommand`` and ``HeadPositionCommand``; a ``StoreMiddleware`` handles them all through
/// one generic method, a ``MiddlewareProtocol`` one of them.
public protocol Command: Sendable {
    /// What the operation returns.
    associatedtype Output: Sendable
    /// Which operation this is.
    static var operation: StoreOperation { get }
    /// The stream the operation concerns, `nil` for an operation on the global log (for logs and
    /// span attributes).
    var targetStream: String? { get }
    /// The events an append carries, 0 for reads (for logs and span attributes).
    var eventCount: Int { get }
    /// How many events the operation newly stored, read from its result: 0 for reads and for a
    /// replayed append (a retry of one that had committed) — what metrics count as appended.
    static func appendedEventCount(_ output: Output) -> Int
}

extension Command {
    /// Which operation this is (``operation`` of the type).
    public var operation: StoreOperation { Self.operation }
}

/// What every step of a chain may read besides the command (hummingbird's `Context`).
public struct CommandContext: Sendable {
    /// The tenant of the store running the operation (`nil` for an unscoped store).
    public var tenantID: String?

    /// Creates a context.
    public init(tenantID: String?) { self.tenantID = tenantID }
}

/// The next step of a chain (seed: `Handler`): runs a command, returns its own result type.
public typealias CommandHandler<C: Command> = (C, CommandContext) async throws -> C.Output

/// Appends events to a stream (`EventStore.append`): the ``AppendRequest`` the adapter receives,
/// so an append is one value from the store to the storage, never copied field by field. Middleware
/// may change the events (e.g. add metadata) before storage; every event's `id` is already set
/// when the chain runs.
public typealias AppendCommand = AppendRequest

extension AppendRequest: Command {
    public typealias Output = AppendResult
    public static var operation: StoreOperation { .append }
    public var targetStream: String? { streamID }
    public var eventCount: Int { events.count }
    public static func appendedEventCount(_ output: AppendResult) -> Int { output.isReplay ? 0 : output.events.count }
}

/// Reads one page of a stream (`EventStore.readStream`, and so `load`) (seed: `Load`).
public struct LoadCommand: Command {
    public typealias Output = [Event]
    public static var operation: StoreOperation { .load }

    /// The stream to read.
    public var streamID: String
    /// The first version to return (inclusive); backward with `-1` starts at the last event.
    public var fromVersion: Int64
    /// The most events to return.
    public var limit: Int
    /// The direction.
    public var direction: ReadDirection

    /// Creates a load command.
    public init(streamID: String, fromVersion: Int64, limit: Int, direction: ReadDirection) {
        self.streamID = streamID
        self.fromVersion = fromVersion
        self.limit = limit
        self.direction = direction
    }

    public var targetStream: String? { streamID }
    public var eventCount: Int { 0 }
    public static func appendedEventCount(_ output: Output) -> Int { 0 }
}

/// What the store knows about a stream (`EventStore.streamInfo`); `nil` for a missing stream.
public struct StreamInfoCommand: Command {
    public typealias Output = StreamInfo?
    public static var operation: StoreOperation { .streamInfo }

    /// The stream.
    public var streamID: String

    /// Creates a stream-info command.
    public init(streamID: String) { self.streamID = streamID }

    public var targetStream: String? { streamID }
    public var eventCount: Int { 0 }
    public static func appendedEventCount(_ output: Output) -> Int { 0 }
}

/// Reads one page of the global log (`EventStore.readAll`).
public struct ReadAllCommand: Command {
    public typealias Output = [Event]
    public static var operation: StoreOperation { .readAll }

    /// The position to read after (exclusive).
    public var after: UInt64
    /// Which events to return.
    public var filter: EventFilter
    /// The most events to return.
    public var limit: Int

    /// Creates a read-all command.
    public init(after: UInt64, filter: EventFilter, limit: Int) {
        self.after = after
        self.filter = filter
        self.limit = limit
    }

    public var targetStream: String? { nil }
    public var eventCount: Int { 0 }
    public static func appendedEventCount(_ output: Output) -> Int { 0 }
}

/// The position of the last committed event (`EventStore.headPosition`).
public struct HeadPositionCommand: Command {
    public typealias Output = UInt64
    public static var operation: StoreOperation { .headPosition }

    /// Creates a head-position command.
    public init() {}

    public var targetStream: String? { nil }
    public var eventCount: Int { 0 }
    public static func appendedEventCount(_ output: Output) -> Int { 0 }
}
