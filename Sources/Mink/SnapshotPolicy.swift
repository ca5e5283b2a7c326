/// When `saveAggregate` stores a snapshot (seed: `SnapshotPolicy`).
public struct SnapshotPolicy: Sendable {
    let decide: @Sendable (_ previousVersion: Int64, _ newVersion: Int64) -> Bool

    /// A policy from a closure of the versions before and after a save.
    public init(_ decide: @escaping @Sendable (_ previousVersion: Int64, _ newVersion: Int64) -> Bool) { self.decide = decide }

    /// A snapshot whenever a save crosses a multiple of `n` events (e.g. 100, 200, …).
    public static func everyNEvents(_ n: Int64) -> SnapshotPolicy {
        SnapshotPolicy { old, new in n > 0 && new / n > old / n }
    }

    /// A snapshot after every save.
    public static let always = SnapshotPolicy { _, _ in true }

    /// Never a snapshot.
    public static let never = SnapshotPolicy { _, _ in false }

    /// Whether to snapshot after a save moved the stream from `previousVersion` to `newVersion`.
    public func shouldSnapshot(previousVersion: Int64, newVersion: Int64) -> Bool { decide(previousVersion, newVersion) }
}
