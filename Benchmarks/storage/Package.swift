// swift-tools-version:6.0
// Storage benchmarks, kept out of the root package so that its build stays fast:
//   cd Benchmarks/storage && swift run -c release StorageBenchmark
import PackageDescription

let package = Package(
    name: "storage-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "minkd", path: "../..")],
    targets: [
        .executableTarget(
            name: "StorageBenchmark",
            dependencies: [.product(name: "Mink", package: "minkd"), .product(name: "MinkSQLite", package: "minkd")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
