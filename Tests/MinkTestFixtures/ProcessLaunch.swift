import Foundation
import CEpoll
import Glibc
import Synchronization

/// Waiting for child processes (see `ChildProcess`).
public enum ProcessLaunch {
    /// How a child process ended.
    public struct Exit: Sendable, Equatable {
        /// `.exit` or `.uncaughtSignal`.
        public var reason: Process.TerminationReason
        /// The exit code, or the signal's number.
        public var status: Int32

        /// Creates an outcome.
        public init(reason: Process.TerminationReason, status: Int32) {
            self.reason = reason
            self.status = status
        }
    }

    /// Waits up to `timeout` for `child` to end, without blocking a thread.
    /// - Returns: how it ended, or nil if it still runs at the deadline.
    public static func exit(of child: ChildProcess, timeout: Duration = .seconds(10)) async -> Exit? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let ended = child.poll() { return ended }
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// A child process started with `posix_spawn`, with its standard output and error on pipes.
///
/// Why not Foundation's `Process`: its `run()` was seen to crash (a bad pointer in a `memmove`
/// inside `run()`) while other threads of the test process were busy, even with launches
/// serialised. The tests need a pid, pipes and an exit status, nothing more. The pipes are
/// created close-on-exec and every other descriptor is closed in the child, so a child never
/// holds another child's pipe open (which would keep the other reader from seeing EOF).
/// A child still running when its `ChildProcess` goes away is killed and reaped.
public final class ChildProcess: Sendable {
    /// The child's pid.
    public let processIdentifier: pid_t
    /// The write end of the child's standard input, when one was asked for (else /dev/null).
    public let standardInput: FileHandle?
    /// The read end of the child's standard output.
    public let standardOutput: FileHandle
    /// The read end of the child's standard error.
    public let standardError: FileHandle
    private let outcome = Mutex<ProcessLaunch.Exit?>(nil)

    /// Starts `executable` with `arguments` (not including argv[0]) and `environment`
    /// (this process's environment when nil).
    public init(executable: String, arguments: [String], environment: [String: String]? = nil, standardInput wantsInput: Bool = false) throws {
        func makePipe() throws -> (read: Int32, write: Int32) {
            var fds: [Int32] = [-1, -1]
            guard pipe2(&fds, O_CLOEXEC) == 0 else { throw ChildProcessError(call: "pipe2", errno: errno) }
            return (fds[0], fds[1])
        }
        let out = try makePipe()
        let err = try makePipe()
        let input: (read: Int32, write: Int32)
        if wantsInput {
            input = try makePipe()
        } else {
            let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
            guard null >= 0 else { throw ChildProcessError(call: "open /dev/null", errno: errno) }
            input = (null, -1)
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // dup2 clears close-on-exec on the target, so 0, 1 and 2 survive the exec.
        posix_spawn_file_actions_adddup2(&actions, input.read, 0)
        posix_spawn_file_actions_adddup2(&actions, out.write, 1)
        posix_spawn_file_actions_adddup2(&actions, err.write, 2)
        posix_spawn_file_actions_addclosefrom_np(&actions, 3)

        let argv = [executable] + arguments
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        let env = environment ?? ProcessInfo.processInfo.environment
        var cEnv: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { cEnv.forEach { free($0) } }

        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, nil, &cArgs, &cEnv)
        // The child has its copies; the parent keeps only its own ends.
        close(input.read)
        close(out.write)
        close(err.write)
        guard rc == 0 else {
            close(out.read)
            close(err.read)
            if input.write >= 0 { close(input.write) }
            throw ChildProcessError(call: "posix_spawn \(executable)", errno: rc)
        }
        processIdentifier = pid
        standardInput = input.write >= 0 ? FileHandle(fileDescriptor: input.write, closeOnDealloc: true) : nil
        standardOutput = FileHandle(fileDescriptor: out.read, closeOnDealloc: true)
        standardError = FileHandle(fileDescriptor: err.read, closeOnDealloc: true)
    }

    deinit {
        if poll() == nil {
            kill(processIdentifier, SIGKILL)
            var status: Int32 = 0
            while waitpid(processIdentifier, &status, 0) < 0, errno == EINTR {}
        }
    }

    /// How the child ended, reaping it the first time; nil while it runs.
    public func poll() -> ProcessLaunch.Exit? {
        outcome.withLock { outcome in
            if let outcome { return outcome }
            var status: Int32 = 0
            var rc: pid_t
            repeat { rc = waitpid(processIdentifier, &status, WNOHANG) } while rc < 0 && errno == EINTR
            guard rc == processIdentifier else { return nil }
            // WIFEXITED / WEXITSTATUS / WTERMSIG are macros Swift cannot see.
            let signal = status & 0x7f
            let ended = signal == 0
                ? ProcessLaunch.Exit(reason: .exit, status: (status >> 8) & 0xff)
                : ProcessLaunch.Exit(reason: .uncaughtSignal, status: signal)
            outcome = ended
            return ended
        }
    }

    /// Whether the child still runs.
    public var isRunning: Bool { poll() == nil }
}

/// A system call that failed while starting a child process.
public struct ChildProcessError: Error, CustomStringConvertible {
    /// The call.
    public var call: String
    /// Its errno.
    public var errno: Int32
    public var description: String { "\(call): \(String(cString: strerror(errno)))" }
}

extension FileHandle {
    /// Reads (on a thread of its own, never blocking Swift's cooperative pool) until
    /// `done(everything read so far)` holds, the writer closes, or `timeout` passes — so that a
    /// child that never prints what a test waits for fails the test instead of hanging it.
    /// - Returns: the text read, and whether `done` held.
    public func read(until done: @escaping @Sendable (String) -> Bool, timeout: Duration) async -> (text: String, matched: Bool) {
        let fd = fileDescriptor
        let deadline = ContinuousClock.now + timeout
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var bytes: [UInt8] = []
                var chunk = [UInt8](repeating: 0, count: 16_384)
                while true {
                    let text = String(decoding: bytes, as: UTF8.self)
                    if done(text) { return continuation.resume(returning: (text, true)) }
                    let left = deadline - ContinuousClock.now
                    guard left > .zero else { return continuation.resume(returning: (text, false)) }
                    var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                    let ms = Int32(min(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1, 1000))
                    let ready = poll(&p, 1, ms)
                    if ready < 0 && errno != EINTR { return continuation.resume(returning: (text, false)) }
                    guard ready > 0 else { continue }
                    let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                    if n > 0 {
                        bytes += chunk[0..<n]
                    } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                        return continuation.resume(returning: (String(decoding: bytes, as: UTF8.self), done(String(decoding: bytes, as: UTF8.self))))
                    }
                }
            }
        }
    }
}
