/// Settings of a SQLite storage.
public struct SQLiteConfiguration: Sendable, Hashable {
    /// SQLite's `synchronous` setting in WAL mode.
    public enum Synchronous: String, Sendable, Hashable {
        /// The WAL is fsync'd at every commit: an acknowledged append survives a process kill, an
        /// OS crash and a power loss. The default.
        case full = "FULL"
        /// The WAL is fsync'd only at checkpoints: an acknowledged append survives a process kill
        /// (the bytes are in the OS page cache) but the last commits may be lost on power loss.
        case normal = "NORMAL"
    }

    /// Durability of commits (default `.full`).
    public var synchronous: Synchronous
    /// The number of reader connections (WAL lets them read while the writer writes); at least 1.
    public var readerCount: Int
    /// How long a statement waits for a lock held by another connection or process before the
    /// operation fails with a transient `.unavailable` error (default: ``timeout``, so that lock
    /// waits count against the storage timeout as documented — it was a fixed 5 s: a `503` at
    /// 5 s with `timeoutSeconds: 10`).
    public var busyTimeout: Duration
    /// The most writes (appends, read-model transactions, …) committed in one group commit.
    public var maxBatchSize: Int
    /// How long a caller waits for an operation at most, from the moment it reaches the storage
    /// (`storage.timeoutSeconds`): queued behind other writes, waiting for a lock or under way, it
    /// then fails with a transient `.unavailable`. See `docs/storage-sqlite.md`, "Deadlines".
    public var timeout: Duration
    /// Free space on the database's file system below which the write probe (readiness) reports
    /// the disk full (default 1 MiB): SQLite's small probe write can still succeed in the room a
    /// WAL file already has while appends that need new pages fail, so the probe also asks the
    /// file system (`statvfs`; space root may use when running as root).
    public var minimumFreeBytes: Int64

    /// Creates a configuration.
    public init(
        synchronous: Synchronous = .full, readerCount: Int = 4, busyTimeout: Duration? = nil, maxBatchSize: Int = 128,
        timeout: Duration = .seconds(10), minimumFreeBytes: Int64 = 1 << 20
    ) {
        self.minimumFreeBytes = minimumFreeBytes
        self.synchronous = synchronous
        self.timeout = timeout
        self.readerCount = max(1, readerCount)
        self.busyTimeout = busyTimeout ?? timeout
        self.maxBatchSize = max(1, maxBatchSize)
    }

    var busyTimeoutMilliseconds: Int32 {
        let (seconds, attoseconds) = busyTimeout.components
        return Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }
}
