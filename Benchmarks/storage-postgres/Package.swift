// swift-tools-version:6.0
// PostgreSQL storage benchmarks, kept out of the root package so that its build stays fast:
//   Benchmarks/storage-postgres/bench.sh [seconds per run]
import PackageDescription

let package = Package(
    name: "storage-postgres-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "minkd", path: "../..")],
    targets: [
        .executableTarget(
            name: "PostgresBenchmark",
            dependencies: [.product(name: "Mink", package: "minkd"), .product(name: "MinkPostgres", package: "minkd")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
