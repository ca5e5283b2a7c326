// swift-tools-version:6.0
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
]

let package = Package(
    name: "minkd",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Mink", targets: ["Mink"]),
        .library(name: "MinkTesting", targets: ["MinkTesting"]),
        .library(name: "MinkHTTP", targets: ["MinkHTTP"]),
        .library(name: "MinkSQL", targets: ["MinkSQL"]),
        .library(name: "MinkSQLite", targets: ["MinkSQLite"]),
        .library(name: "MinkWire", targets: ["MinkWire"]),
        .library(name: "MinkConfig", targets: ["MinkConfig"]),
        .library(name: "MinkServer", targets: ["MinkServer"]),
        .library(name: "MinkStorageWiring", targets: ["MinkStorageWiring"]),
        .library(name: "MinkPostgres", targets: ["MinkPostgres"]),
        .library(name: "MinkClient", targets: ["MinkClient"]),
        .executable(name: "minkd", targets: ["minkd"]),
        .executable(name: "mink", targets: ["mink"]),
    ],
    // Exact versions: Package.resolved stays out of git (the build machines resolve from a mirror
    // whose commit ids differ from upstream's), so these pins are what makes the container image
    // (Dockerfile) and CI build the same code. scripts/check-deploy checks that the Dockerfile's
    // Swift image is at least the highest swift-tools-version among them.
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", exact: "2.13.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", exact: "1.7.3"),
        .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", exact: "2.4.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", exact: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto", exact: "3.12.3"),
        // Not used directly: pinned so that the dependencies' own dependencies resolve to the
        // same versions everywhere too (SwiftPM notes that no target uses them; that is the point).
        .package(url: "https://github.com/apple/swift-asn1.git", exact: "1.7.4"),
        .package(url: "https://github.com/apple/swift-async-algorithms.git", exact: "1.1.4"),
        .package(url: "https://github.com/apple/swift-atomics.git", exact: "1.3.0"),
        .package(url: "https://github.com/apple/swift-collections.git", exact: "1.6.0"),
    ],
    targets: [
        // C shims: system libraries from Debian's -dev packages.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite"),
        .systemLibrary(name: "CEpoll", path: "Sources/CEpoll"),
        .systemLibrary(name: "CLibPQ", path: "Sources/CLibPQ", pkgConfig: "libpq"),

        .target(
            name: "Mink",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(name: "MinkTesting", dependencies: ["Mink"], swiftSettings: swiftSettings),
        .target(name: "MinkHTTP", dependencies: ["CZlib", "CEpoll"], swiftSettings: swiftSettings),
        .target(
            name: "MinkPostgres",
            dependencies: ["Mink", "MinkSQL", "CLibPQ", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .target(name: "MinkSQL", dependencies: ["Mink"], swiftSettings: swiftSettings),
        .target(name: "MinkSQLite", dependencies: ["Mink", "MinkSQL", "CSQLite"], swiftSettings: swiftSettings),
        // A child process for the kill -9 durability test: appends and prints each acknowledged position.
        .executableTarget(
            name: "MinkSQLiteCrashTester",
            dependencies: ["Mink", "MinkSQLite"],
            path: "Tests/MinkSQLiteCrashTester",
            swiftSettings: swiftSettings
        ),

        // The HTTP API's bodies, built on the core's model (Event, Metadata, Query, JSONValue).
        .target(name: "MinkWire", dependencies: ["Mink"], swiftSettings: swiftSettings),
        .target(
            name: "MinkConfig",
            // Mink for the one rule per identifier (tenant IDs, field paths).
            dependencies: ["Mink", .product(name: "Yams", package: "Yams"), .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),

        .target(
            name: "MinkServer",
            dependencies: [
                "Mink", "MinkHTTP", "MinkWire", "MinkConfig",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                // For `GET /v1/openapi.json`: the built-in docs/openapi.yaml, converted to JSON once.
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // The storage the configuration names, built for the server: the only place that links
        // libsqlite3 and libpq next to the server (the executable and tests use it).
        .target(
            name: "MinkStorageWiring",
            dependencies: [
                "Mink", "MinkServer", "MinkConfig", "MinkSQLite", "MinkPostgres",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "minkd",
            dependencies: [
                "MinkServer", "MinkStorageWiring", "MinkConfig", "Mink", "MinkHTTP", "MinkWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Benchmarks (Benchmarks/README.md): targets of this package, so that every build — CI
        // included — compiles them and they cannot break unnoticed. Run them with
        // `swift run -c release NAME`.
        .executableTarget(name: "MinkHTTPBench", dependencies: ["MinkHTTP"], path: "Benchmarks/http/Sources/MinkHTTPBench", swiftSettings: swiftSettings),
        .executableTarget(
            name: "ProjectionBenchmark",
            dependencies: ["Mink", "MinkServer", "MinkStorageWiring", "MinkConfig", "MinkHTTP"],
            path: "Benchmarks/projections/Sources/ProjectionBenchmark",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "StorageBenchmark", dependencies: ["Mink", "MinkSQLite"], path: "Benchmarks/storage/Sources/StorageBenchmark", swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "PostgresBenchmark", dependencies: ["Mink", "MinkPostgres"], path: "Benchmarks/storage-postgres/Sources/PostgresBenchmark",
            swiftSettings: swiftSettings
        ),
        .executableTarget(name: "MinkSoak", path: "Benchmarks/soak/Sources/MinkSoak", swiftSettings: swiftSettings),
        .executableTarget(
            name: "ScavengeBenchmark", dependencies: ["Mink", "MinkSQLite", "MinkPostgres"], path: "Benchmarks/scavenge/Sources/ScavengeBenchmark",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "StreamListBenchmark", dependencies: ["Mink", "MinkSQLite", "MinkPostgres"], path: "Benchmarks/streams/Sources/StreamListBenchmark",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "TenancyBenchmark", dependencies: ["Mink", "MinkSQLite"], path: "Benchmarks/tenancy/Sources/TenancyBenchmark", swiftSettings: swiftSettings
        ),
        .target(
            name: "MinkClient",
            dependencies: ["Mink", "MinkHTTP", "MinkWire"],
            swiftSettings: swiftSettings
        ),
        // The `mink` command-line client (docs/cli.md), on MinkClient.
        .executableTarget(
            name: "mink",
            dependencies: [
                "MinkClient", "Mink", "MinkWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),

        .testTarget(
            name: "MinkServerTests",
            dependencies: [
                "MinkServer", "MinkStorageWiring", "MinkHTTP", "MinkWire", "MinkConfig", "Mink", "MinkSQLite", "MinkPostgres",
                "MinkTestFixtures",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Shared by test targets: the seed's order example, the HTTP request vectors, serialised
        // child-process launches.
        .target(name: "MinkTestFixtures", dependencies: ["Mink", "CEpoll"], path: "Tests/MinkTestFixtures", swiftSettings: swiftSettings),
        .testTarget(
            name: "MinkTests",
            dependencies: [
                "Mink", "MinkTesting", "MinkTestFixtures",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "MinkSQLTests", dependencies: ["Mink", "MinkSQL"], swiftSettings: swiftSettings),
        .testTarget(
            name: "MinkSQLiteTests",
            dependencies: ["Mink", "MinkSQL", "MinkSQLite", "CSQLite", "MinkTesting", "MinkSQLiteCrashTester", "MinkTestFixtures"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MinkPostgresTests",
            dependencies: ["MinkPostgres", "Mink", "MinkTesting", "MinkTestFixtures"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MinkHTTPTests",
            dependencies: ["MinkHTTP", "MinkTestFixtures"],
            resources: [.copy("Resources")],
            swiftSettings: swiftSettings
        ),
        // Runs the real `mink` and `minkd` executables (built by `swift build --build-tests`).
        .testTarget(name: "MinkCLITests", dependencies: ["MinkTestFixtures"], swiftSettings: swiftSettings),
        .testTarget(name: "MinkWireTests", dependencies: ["MinkWire", "Mink"], swiftSettings: swiftSettings),
        .testTarget(name: "MinkConfigTests", dependencies: ["MinkConfig", "Mink"], swiftSettings: swiftSettings),
        .testTarget(
            name: "MinkClientTests",
            dependencies: [
                "MinkClient", "Mink", "MinkTestFixtures", "MinkServer", "MinkStorageWiring", "MinkConfig", "MinkHTTP", "MinkWire",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
