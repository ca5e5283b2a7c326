// swift-tools-version:6.0
// Projection benchmarks, kept out of the root package so that its build stays fast:
//   cd Benchmarks/projections && swift run -c release ProjectionBenchmark [events, default 100000]
import PackageDescription

let package = Package(
    name: "projection-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "minkd", path: "../..")],
    targets: [
        .executableTarget(
            name: "ProjectionBenchmark",
            dependencies: [
                .product(name: "Mink", package: "minkd"), .product(name: "MinkServer", package: "minkd"), .product(name: "MinkStorageWiring", package: "minkd"),
                .product(name: "MinkConfig", package: "minkd"), .product(name: "MinkHTTP", package: "minkd"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
