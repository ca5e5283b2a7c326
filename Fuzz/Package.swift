// swift-tools-version:6.0
// Fuzzing harness for MinkHTTP's request parser (libFuzzer). Build and run with ./run.sh.
import Foundation
import PackageDescription

// A path dependency's identity is its folder's name, which differs per checkout.
let rootName = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "MinkHTTPFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(path: "..")],
    targets: [
        .executableTarget(
            name: "FuzzHTTPParser",
            dependencies: [.product(name: "MinkHTTP", package: rootName)],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
