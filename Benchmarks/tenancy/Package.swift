// swift-tools-version:6.0
// Tenancy benchmark, kept out of the root package so that its build stays fast:
//   Benchmarks/tenancy/bench.sh [appends per writer] [rounds]
import PackageDescription

let package = Package(
    name: "tenancy-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "minkd", path: "../..")],
    targets: [
        .executableTarget(
            name: "TenancyBenchmark",
            dependencies: [.product(name: "Mink", package: "minkd"), .product(name: "MinkSQLite", package: "minkd")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
