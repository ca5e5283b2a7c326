// swift-tools-version:6.0
// The soak load generator for soak.sh: open-loop appends at a fixed rate plus SSE subscribers,
// reporting p99 latency, minkd's RSS and the WAL size per minute. Foundation only, so it builds
// in seconds and is never the bottleneck (threads and blocking sockets, no Python).
import PackageDescription

let package = Package(
    name: "MinkSoak",
    targets: [
        .executableTarget(name: "MinkSoak", swiftSettings: [.swiftLanguageMode(.v6)]),
    ]
)
