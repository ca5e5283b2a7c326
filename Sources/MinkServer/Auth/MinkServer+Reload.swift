import Logging
import MinkConfig

extension MinkServer {
    /// Applies a re-read configuration (SIGHUP, CONFIG.md): the token list is replaced at once —
    /// requests already authenticated finish and open connections stay open, but an event
    /// stream whose token no longer grants it ends at its next message — and every other change
    /// is ignored until a restart.
    /// - Parameter new: the configuration as loaded again from the same file, environment and flags.
    /// - Returns: the keys that changed but need a restart (also logged).
    /// - Throws: ``ConfigError`` (`auth.tokens`), the token list unchanged, when authentication is
    ///   on — as it stays until a restart — and the new list is empty: every request would get
    ///   `401`, the state start-up refuses (a file emptied, or `auth.enabled: false` with no
    ///   tokens, reloaded so before session 23).
    @discardableResult
    public func reloadTokens(from new: MinkdConfiguration) throws -> [String] {
        if authenticator.isEnabled, new.auth.tokens.isEmpty {
            throw ConfigError(
                keyPath: "auth.tokens",
                message: "the reloaded configuration lists no tokens while authentication is on (until a restart): every request would get 401; the token list is unchanged"
            )
        }
        authenticator.replaceTokens(new.auth.tokens)
        let old = configuration
        var ignored: [String] = []
        if old.listen != new.listen { ignored.append("listen") }
        if old.storage != new.storage { ignored.append("storage") }
        if old.tenancy != new.tenancy { ignored.append("tenancy") }
        if old.auth.enabled != new.auth.enabled { ignored.append("auth.enabled") }
        if old.limits != new.limits { ignored.append("limits") }
        if old.http != new.http { ignored.append("http") }
        if old.shutdown != new.shutdown { ignored.append("shutdown") }
        if old.metrics != new.metrics { ignored.append("metrics") }
        if old.logging != new.logging { ignored.append("logging") }
        if old.projections != new.projections { ignored.append("projections") }
        if old.retention != new.retention { ignored.append("retention") }
        // The count and names only: never a token or a hash.
        var metadata: Logger.Metadata = ["tokens": "\(new.auth.tokens.count)"]
        if !ignored.isEmpty { metadata["ignored_until_restart"] = "\(ignored.joined(separator: ","))" }
        logger.notice("token list reloaded", metadata: metadata)
        return ignored
    }
}
