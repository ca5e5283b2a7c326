// swift-tools-version:6.0
// Fuzzing harnesses (libFuzzer): MinkHTTP's request parser (./run.sh) and the request-body
// decoders (./run-bodies.sh).
import Foundation
import PackageDescription

// A path dependency's identity is its folder's name, which differs per checkout.
let rootName = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "MinkHTTPFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(path: "..")],
    targets: [
        // The driver and the split points both harnesses use.
        .target(name: "FuzzSupport", swiftSettings: [.swiftLanguageMode(.v6)]),
        .executableTarget(
            name: "FuzzHTTPParser",
            dependencies: ["FuzzSupport", .product(name: "MinkHTTP", package: rootName)],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // The request-body decoders (JSONReader, append, read-model query, NDJSON import); ./run-bodies.sh.
        .executableTarget(
            name: "FuzzBodies",
            dependencies: [
                "FuzzSupport",
                .product(name: "Mink", package: rootName),
                .product(name: "MinkWire", package: rootName),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
