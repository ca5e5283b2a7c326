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
        .library(name: "MinkPostgres", targets: ["MinkPostgres"]),
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
        .target(
            name: "MinkPostgres",
            dependencies: ["Mink", "CLibPQ", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),

        .testTarget(name: "MinkTests", dependencies: ["Mink", "MinkTesting"], swiftSettings: swiftSettings),
        .testTarget(
            name: "MinkPostgresTests",
            dependencies: ["MinkPostgres", "Mink", "MinkTesting"],
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
