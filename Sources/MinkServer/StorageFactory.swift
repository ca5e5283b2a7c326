import Foundation
import Mink
import MinkConfig

extension ServerStorage {
    /// Opens the storage the configuration names.
    /// - Throws: a `ConfigError`-style message when the kind cannot be opened.
    public static func open(_ configuration: MinkdConfiguration) async throws -> ServerStorage {
        switch configuration.storage.kind {
        case .memory:
            return .memory()
        default:
            throw MinkError(.adapterNotSupported, "storage \(configuration.storage.kind.rawValue) is not available in this build")
        }
    }
}
