// swift-tools-version:6.0
// A tiny MinkHTTP server for bench.sh (GET /healthz → 200 {"status":"ok"}).
import Foundation
import PackageDescription

// A path dependency's identity is its folder's name, which differs per checkout.
let rootName = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "MinkHTTPBench",
    platforms: [.macOS(.v15)],
    dependencies: [.package(path: "../..")],
    targets: [
        .executableTarget(
            name: "MinkHTTPBench",
            dependencies: [.product(name: "MinkHTTP", package: rootName)],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
