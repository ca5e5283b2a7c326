import Foundation

/// A loopback port bound by a socket that never listens: a connection to it is refused, and no
/// other socket of the machine is given it while it is held.
public struct ClosedPort {
    let fd: Int32
    /// The port held.
    public let port: Int

    /// Binds a fresh loopback port.
    public init() throws {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard s >= 0 else { throw TestSetupFailure("socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, length) } }
        let named = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &length) } }
        guard bound == 0, named == 0 else {
            close(s)
            throw TestSetupFailure("bind/getsockname: errno \(errno)")
        }
        fd = s
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    /// Closes the socket: the port may be given to another socket from then on.
    public func release() { close(fd) }
}

/// A test could not set up what it needs.
public struct TestSetupFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
