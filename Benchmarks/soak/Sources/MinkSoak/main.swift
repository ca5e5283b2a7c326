// Usage: MinkSoak PORT RATE MINUTES SUBSCRIBERS MINKD_PID WAL_PATH
//
// Appends single events at RATE per second (open loop: each request has a scheduled start, and
// its latency counts from then, so a stall is not hidden by the generator waiting), on 32
// keep-alive connections, while SUBSCRIBERS server-sent-event clients read /v1/subscriptions/all.
// Prints one line per minute: appends, errors, p50/p99/max latency (ms), minkd's RSS (MiB), the
// WAL file's size (MiB) and the slowest subscriber's lag (events behind the appends).
import Foundation
import Glibc
import Synchronization

struct Minute { var latencies: [UInt64] = []; var errors = 0 }

final class Soak: Sendable {
    let port: UInt16, rate: Double, minutes: Int, subscribers: Int, pid: Int32, walPath: String
    let stats: Mutex<[Minute]>
    let ticket = Atomic<Int>(0)
    let delivered: Mutex<[Int]>
    let start: UInt64
    let end: UInt64

    init(port: UInt16, rate: Double, minutes: Int, subscribers: Int, pid: Int32, walPath: String) {
        self.port = port; self.rate = rate; self.minutes = minutes; self.subscribers = subscribers; self.pid = pid
        self.walPath = walPath
        stats = Mutex(Array(repeating: Minute(), count: minutes + 1))
        delivered = Mutex(Array(repeating: 0, count: subscribers))
        start = Soak.nowNanos()
        end = start + UInt64(minutes) * 60_000_000_000
    }

    static func nowNanos() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    func connect() -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if rc != 0 { perror("connect"); exit(1) }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, 4)
        return fd
    }

    static func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            off += n
        }
        return true
    }

    /// Reads one response (head + Content-Length body); returns its status, or nil on a broken connection.
    static func readResponse(_ fd: Int32, _ buffer: inout [UInt8]) -> Int? {
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            if let end = buffer.firstRange(of: [13, 10, 13, 10]) {
                let head = String(decoding: buffer[..<end.lowerBound], as: UTF8.self)
                let status = Int(head.dropFirst(9).prefix(3)) ?? 0
                var length = 0
                for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
                    length = Int(line.dropFirst(15).trimmingCharacters(in: .whitespaces)) ?? 0
                }
                let total = end.upperBound + length
                while buffer.count < total {
                    let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    if n <= 0 { return nil }
                    buffer += chunk[0..<n]
                }
                buffer.removeFirst(total)
                return status
            }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return nil }
            buffer += chunk[0..<n]
        }
    }

    /// One subscriber: counts `id:` lines (one per event) as fast as the socket delivers.
    func subscribe(_ s: Int) {
        let fd = connect()
        _ = Self.sendAll(fd, Array("GET /v1/subscriptions/all?after=0 HTTP/1.1\r\nHost: soak\r\n\r\n".utf8))
        var chunk = [UInt8](repeating: 0, count: 65536)
        var carry: [UInt8] = []
        while Self.nowNanos() < end {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            let data = carry + chunk[0..<n]
            var count = 0
            var i = 0
            while i + 3 < data.count {
                if data[i] == 10, data[i + 1] == 105, data[i + 2] == 100, data[i + 3] == 58 { count += 1 }  // "\nid:"
                i += 1
            }
            carry = Array(data.suffix(3))
            delivered.withLock { $0[s] += count }
        }
    }

    /// One appender connection taking scheduled requests in turn (open loop).
    func append() {
        var fd = connect()
        var buffer: [UInt8] = []
        let interval = 1e9 / rate
        while true {
            let i = ticket.add(1, ordering: .relaxed).newValue - 1
            let due = start + UInt64(Double(i) * interval)
            if due >= end { return }
            let now = Self.nowNanos()
            if due > now { usleep(UInt32((due - now) / 1000)) }
            let body = "{\"events\":[{\"type\":\"Soak\",\"data\":{\"n\":\(i)}}]}"
            let request = "POST /v1/streams/soak-\(i % 1000) HTTP/1.1\r\nHost: soak\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
            var status: Int? = nil
            if Self.sendAll(fd, Array(request.utf8)) { status = Self.readResponse(fd, &buffer) }
            let latency = Self.nowNanos() - due
            let minute = Int((due - start) / 60_000_000_000)
            stats.withLock { m in
                if status == 201 { m[minute].latencies.append(latency) } else { m[minute].errors += 1 }
            }
            if status == nil { close(fd); fd = connect(); buffer = [] }
        }
    }

    func rssMiB() -> Double {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
        return (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
    }

    func walMiB() -> Double {
        let size = (try? FileManager.default.attributesOfItem(atPath: walPath))?[.size] as? Int ?? 0
        return Double(size) / 1_048_576
    }

    func run() {
        for s in 0..<subscribers { Thread { self.subscribe(s) }.start() }
        for _ in 0..<32 { Thread { self.append() }.start() }
        print("minute appends errors p50_ms p99_ms max_ms rss_mib wal_mib slowest_subscriber_lag")
        for minute in 0..<minutes {
            let due = start + UInt64(minute + 1) * 60_000_000_000
            let now = Self.nowNanos()
            if due > now { usleep(UInt32(min((due - now) / 1000, UInt64(UInt32.max)))) }
            sleep(2)  // let the minute's last requests finish
            let m = stats.withLock { $0[minute] }
            let sorted = m.latencies.sorted()
            func pct(_ p: Double) -> Double { sorted.isEmpty ? 0 : Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1e6 }
            let appended = ticket.load(ordering: .relaxed)
            let slowest = delivered.withLock { $0.min() } ?? 0
            print(String(format: "%6d %7d %6d %6.1f %6.1f %6.1f %7.1f %7.1f %d", minute + 1, sorted.count, m.errors, pct(0.5), pct(0.99),
                         Double(sorted.last ?? 0) / 1e6, rssMiB(), walMiB(), max(0, appended - slowest)))
            fflush(nil)  // all streams: stdout is a C global Swift 6 will not touch
        }
    }
}

let args = CommandLine.arguments
guard args.count >= 7, let port = UInt16(args[1]), let rate = Double(args[2]), let minutes = Int(args[3]),
      let subscribers = Int(args[4]), let pid = Int32(args[5]) else {
    FileHandle.standardError.write(Data("usage: MinkSoak PORT RATE MINUTES SUBSCRIBERS MINKD_PID WAL_PATH\n".utf8))
    exit(2)
}
signal(SIGPIPE, SIG_IGN)
Soak(port: port, rate: rate, minutes: minutes, subscribers: subscribers, pid: pid, walPath: args[6]).run()
exit(0)
