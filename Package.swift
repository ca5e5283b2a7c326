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
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
    ],
    targets: [
        // C shims: system libraries from Debian's -dev packages.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite"),
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
        .target(name: "MinkHTTP", dependencies: ["CZlib"], swiftSettings: swiftSettings),
        .target(name: "MinkSQL", dependencies: ["Mink"], swiftSettings: swiftSettings),
        .target(name: "MinkSQLite", dependencies: ["Mink", "MinkSQL", "CSQLite"], swiftSettings: swiftSettings),
        // A child process for the kill -9 durability test: appends and prints each acknowledged position.
        .executableTarget(
            name: "MinkSQLiteCrashTester",
            dependencies: ["Mink", "MinkSQLite"],
            path: "Tests/MinkSQLiteCrashTester",
            swiftSettings: swiftSettings
        ),

        .testTarget(
            name: "MinkTests",
            dependencies: [
                "Mink", "MinkTesting",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "MinkSQLTests", dependencies: ["Mink", "MinkSQL"], swiftSettings: swiftSettings),
        .testTarget(
            name: "MinkSQLiteTests",
            dependencies: ["Mink", "MinkSQL", "MinkSQLite", "CSQLite", "MinkTesting", "MinkSQLiteCrashTester"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MinkHTTPTests",
            dependencies: ["MinkHTTP"],
            resources: [.copy("Resources")],
            swiftSettings: swiftSettings
        ),
    ]
)
