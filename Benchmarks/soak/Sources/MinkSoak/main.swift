// Usage:
//   MinkSoak capacity PORT SECONDS SUBSCRIBERS [CONNECTIONS]
//   MinkSoak run PORT RATE MINUTES SUBSCRIBERS MINKD_PID WAL_PATH [CONNECTIONS]
//
// `capacity`: with SUBSCRIBERS server-sent-event clients reading /v1/subscriptions/all, appends
// single events as fast as CONNECTIONS (default 64) keep-alive connections allow (closed loop)
// for SECONDS, and prints what minkd sustained end to end: the lower of the append rate and the
// rate at which the slowest subscriber received the events (a last line `CAPACITY N`).
//
// `run`: appends single events at RATE per second (open loop: each request has a scheduled
// start, and its latency counts from then, so a stall is not hidden by the generator waiting) on
// CONNECTIONS (default 64) keep-alive connections, while SUBSCRIBERS clients read
// /v1/subscriptions/all. Prints one line per minute, counting *completions* in the minute they
// completed (a request scheduled in minute 1 and answered in minute 3 counts in minute 3): 201s,
// errors, requests sent more than 100 ms after their scheduled start (every connection was busy:
// minkd holds CONNECTIONS requests), requests scheduled but not answered at the minute's end,
// p50/p99/max latency (ms), minkd's RSS (MiB), the WAL file's size (MiB), minkd's head position
// and its growth in the minute (to check the counts against), and the slowest subscriber's lag
// (events behind the head). A summary follows the last minute.
import Foundation
import Glibc
import Synchronization

/// Plain blocking sockets to minkd on 127.0.0.1, one thread per connection.
struct Wire {
    let port: UInt16

    func connect() -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
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

    /// Reads one response (head + Content-Length body); its status and body, or nil on a broken
    /// connection.
    static func readResponse(_ fd: Int32, _ buffer: inout [UInt8]) -> (status: Int, body: ArraySlice<UInt8>)? {
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
                let body = buffer[end.upperBound..<total]
                buffer.removeFirst(total)
                return (status, body)
            }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return nil }
            buffer += chunk[0..<n]
        }
    }

    static func appendRequest(_ i: Int) -> [UInt8] {
        let body = "{\"events\":[{\"type\":\"Soak\",\"data\":{\"n\":\(i)}}]}"
        return Array(
            "POST /v1/streams/soak-\(i % 1000) HTTP/1.1\r\nHost: soak\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8
        )
    }
}

/// minkd's head position, asked on a connection of its own.
final class HeadProbe {
    let wire: Wire
    var fd: Int32 = -1
    var buffer: [UInt8] = []

    init(wire: Wire) { self.wire = wire }

    func head() -> Int {
        for _ in 0..<2 {
            if fd < 0 { fd = wire.connect(); buffer = [] }
            if Wire.sendAll(fd, Array("GET /v1/events/head HTTP/1.1\r\nHost: soak\r\n\r\n".utf8)),
               let r = Wire.readResponse(fd, &buffer), r.status == 200 {
                // {"position":N}
                let text = String(decoding: r.body, as: UTF8.self)
                let digits = text.drop { !$0.isNumber }.prefix { $0.isNumber }
                return Int(digits) ?? 0
            }
            close(fd)
            fd = -1
        }
        return -1
    }
}

/// SSE clients on /v1/subscriptions/all, each keeping the last event id (position) it received.
final class Subscribers: Sendable {
    let wire: Wire
    let count: Int
    let lastIDs: Mutex<[Int]>
    let connected = Atomic<Int>(0)

    init(wire: Wire, count: Int, after: Int) {
        self.wire = wire
        self.count = count
        lastIDs = Mutex(Array(repeating: after, count: count))
        for s in 0..<count { Thread { self.subscribe(s, after: after) }.start() }
    }

    /// The position the slowest subscriber has reached.
    var slowest: Int { lastIDs.withLock { $0.min() } ?? 0 }

    /// Reads `id:` lines as fast as the socket delivers: a byte-level state machine over each
    /// chunk (the subscriber must never be the bottleneck), one lock per chunk.
    private func subscribe(_ s: Int, after: Int) {
        let fd = wire.connect()
        _ = Wire.sendAll(fd, Array("GET /v1/subscriptions/all?after=\(after) HTTP/1.1\r\nHost: soak\r\n\r\n".utf8))
        connected.add(1, ordering: .relaxed)
        var chunk = [UInt8](repeating: 0, count: 65536)
        // 0: line start, 1: "i", 2: "id", 3: "id:", 4: "id: ", 5: digits, 6: skip to end of line.
        var state = 0
        var value = 0
        var last = after
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            chunk.withUnsafeBufferPointer { p in
                for k in 0..<n {
                    let b = p[k]
                    if b == 10 || b == 13 {
                        if state == 5 { last = value }
                        state = 0
                        continue
                    }
                    let digit = b >= 48 && b <= 57
                    switch state {
                    case 0: state = b == 105 ? 1 : 6
                    case 1: state = b == 100 ? 2 : 6
                    case 2: state = b == 58 ? 3 : 6
                    case 3, 4:
                        if digit { value = Int(b - 48); state = 5 } else { state = b == 32 && state == 3 ? 4 : 6 }
                    case 5: if digit { value = value * 10 + Int(b - 48) } else { state = 6 }
                    default: break
                    }
                }
            }
            let reached = last
            lastIDs.withLock { $0[s] = reached }
        }
        close(fd)
    }
}

/// What completed in one minute (by completion time).
struct Minute {
    var latencies: [UInt64] = []
    var errors = 0
    var late = 0
}

func nowNanos() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

func percentile(_ sorted: [UInt64], _ p: Double) -> Double {
    sorted.isEmpty ? 0 : Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1e6
}

/// The open-loop soak.
final class Soak: Sendable {
    let wire: Wire
    let rate: Double, minutes: Int, pid: Int32, walPath: String, connections: Int
    let start: UInt64
    let end: UInt64
    /// One bucket per minute, and one more for what completes after the last minute.
    let stats: Mutex<[Minute]>
    let ticket = Atomic<Int>(0)
    let completed = Atomic<Int>(0)
    let answered = Atomic<Int>(0)

    init(wire: Wire, rate: Double, minutes: Int, pid: Int32, walPath: String, connections: Int) {
        self.wire = wire
        self.rate = rate
        self.minutes = minutes
        self.pid = pid
        self.walPath = walPath
        self.connections = connections
        stats = Mutex(Array(repeating: Minute(), count: minutes + 1))
        start = nowNanos() + 200_000_000
        end = start + UInt64(minutes) * 60_000_000_000
    }

    func minute(of t: UInt64) -> Int { min(minutes, Int((t - start) / 60_000_000_000)) }

    /// Requests scheduled in all (tickets whose start is before the end).
    var total: Int { Int((Double(end - start) * rate / 1e9).rounded(.up)) }

    /// Requests scheduled to start up to `t`.
    func due(by t: UInt64) -> Int {
        t < start ? 0 : min(Int(Double(t - start) * rate / 1e9) + 1, total)
    }

    /// One appender connection taking scheduled requests in turn.
    func append() {
        var fd = wire.connect()
        var buffer: [UInt8] = []
        let interval = 1e9 / rate
        while true {
            let i = ticket.add(1, ordering: .relaxed).newValue - 1
            let due = start + UInt64(Double(i) * interval)
            if due >= end { return }
            var now = nowNanos()
            if due > now { usleep(UInt32((due - now) / 1000)); now = nowNanos() }
            let late = now > due + 100_000_000
            var status: Int?
            if Wire.sendAll(fd, Wire.appendRequest(i)) { status = Wire.readResponse(fd, &buffer)?.status }
            let done = nowNanos()
            let bucket = minute(of: done)
            stats.withLock { m in
                if status == 201 { m[bucket].latencies.append(done - due) } else { m[bucket].errors += 1 }
                if late { m[bucket].late += 1 }
            }
            if status == 201 { completed.add(1, ordering: .relaxed) }
            answered.add(1, ordering: .relaxed)
            if status == nil { close(fd); fd = wire.connect(); buffer = [] }
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

    func run(subscribers count: Int) {
        let probe = HeadProbe(wire: wire)
        let firstHead = probe.head()
        let subscribers = Subscribers(wire: wire, count: count, after: firstHead)
        for _ in 0..<connections { Thread { self.append() }.start() }
        print("minute appends errors late outstanding p50_ms p99_ms max_ms rss_mib wal_mib head head_growth slowest_subscriber_lag")
        var lastHead = firstHead
        for minute in 0..<minutes {
            let until = start + UInt64(minute + 1) * 60_000_000_000
            let now = nowNanos()
            if until > now { usleep(UInt32(min((until - now) / 1000, UInt64(UInt32.max)))) }
            // Completions are counted by the minute they happened in: this minute's bucket is
            // complete now (a request answered a moment ago may still be taking the lock).
            usleep(50_000)
            let m = stats.withLock { $0[minute] }
            let sorted = m.latencies.sorted()
            let outstanding = max(0, due(by: until) - answered.load(ordering: .relaxed))
            let head = probe.head()
            let lag = max(0, head - subscribers.slowest)
            print(String(
                format: "%6d %7d %6d %6d %11d %6.1f %6.1f %6.1f %7.1f %7.1f %8d %11d %d", minute + 1, sorted.count, m.errors, m.late,
                outstanding, percentile(sorted, 0.5), percentile(sorted, 0.99), Double(sorted.last ?? 0) / 1e6, rssMiB(), walMiB(),
                head, head - lastHead, lag
            ))
            lastHead = head
            fflush(nil)  // all streams: stdout is a C global Swift 6 will not touch
        }
        // Requests under way at the end: wait for their answers (bounded).
        let scheduled = total
        let waitUntil = nowNanos() + 30_000_000_000
        while answered.load(ordering: .relaxed) < scheduled, nowNanos() < waitUntil { usleep(100_000) }
        let tail = stats.withLock { $0[minutes] }
        let head = probe.head()
        let ok = completed.load(ordering: .relaxed)
        print(String(
            format: "== scheduled %d, answered 201 %d (%d after the last minute), errors %d, unanswered %d; head growth %d (201s %d); target %.0f/s, achieved %.0f/s; slowest subscriber lag %d",
            scheduled, ok, tail.latencies.count, stats.withLock { $0.reduce(0) { $0 + $1.errors } },
            max(0, scheduled - answered.load(ordering: .relaxed)), head - firstHead, ok, rate,
            Double(ok) / (Double(end - start) / 1e9), max(0, head - subscribers.slowest)
        ))
        fflush(nil)
    }
}

/// The closed loop's counters, shared by its threads.
final class Counts: Sendable {
    let ok = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
    let finished = Atomic<Int>(0)
    let counter = Atomic<Int>(0)
}

/// Closed loop with subscribers attached: what minkd sustains end to end.
func capacity(wire: Wire, seconds: Int, subscribers count: Int, connections: Int) {
    let probe = HeadProbe(wire: wire)
    let firstHead = probe.head()
    let subscribers = Subscribers(wire: wire, count: count, after: firstHead)
    let ready = nowNanos() + 10_000_000_000
    while subscribers.connected.load(ordering: .relaxed) < count, nowNanos() < ready { usleep(10_000) }
    usleep(500_000)
    let start = nowNanos()
    let end = start + UInt64(seconds) * 1_000_000_000
    let counts = Counts()
    for _ in 0..<connections {
        Thread {
            var fd = wire.connect()
            var buffer: [UInt8] = []
            while nowNanos() < end {
                let i = counts.counter.add(1, ordering: .relaxed).newValue
                var status: Int?
                if Wire.sendAll(fd, Wire.appendRequest(i)) { status = Wire.readResponse(fd, &buffer)?.status }
                if status == 201 { counts.ok.add(1, ordering: .relaxed) } else { counts.errors.add(1, ordering: .relaxed) }
                if status == nil { close(fd); fd = wire.connect(); buffer = [] }
            }
            close(fd)
            counts.finished.add(1, ordering: .relaxed)
        }.start()
    }
    usleep(UInt32(seconds) * 1_000_000)
    // What the slowest subscriber had received when the window closed.
    let received = subscribers.slowest - firstHead
    let stop = nowNanos() + 30_000_000_000
    while counts.finished.load(ordering: .relaxed) < connections, nowNanos() < stop { usleep(10_000) }
    let elapsed = Double(nowNanos() - start) / 1e9
    let appendRate = Double(counts.ok.load(ordering: .relaxed)) / elapsed
    let receiveRate = count == 0 ? appendRate : Double(received) / Double(seconds)
    let sustained = Int(min(appendRate, receiveRate))
    print(String(
        format: "== capacity with %d subscribers, %d connections, %d s: appends %.0f/s (errors %d), slowest subscriber received %.0f/s; sustained %d/s",
        count, connections, seconds, appendRate, counts.errors.load(ordering: .relaxed), receiveRate, sustained
    ))
    print("CAPACITY \(sustained)")
    fflush(nil)
}

let args = CommandLine.arguments
signal(SIGPIPE, SIG_IGN)
let usage = "usage: MinkSoak capacity PORT SECONDS SUBSCRIBERS [CONNECTIONS]\n       MinkSoak run PORT RATE MINUTES SUBSCRIBERS MINKD_PID WAL_PATH [CONNECTIONS]\n"
switch args.count > 1 ? args[1] : "" {
case "capacity":
    guard args.count >= 5, let port = UInt16(args[2]), let seconds = Int(args[3]), let subscribers = Int(args[4]), seconds > 0 else { break }
    let connections = args.count > 5 ? Int(args[5]) ?? 64 : 64
    capacity(wire: Wire(port: port), seconds: seconds, subscribers: subscribers, connections: connections)
    exit(0)
case "run":
    guard args.count >= 8, let port = UInt16(args[2]), let rate = Double(args[3]), let minutes = Int(args[4]),
          let subscribers = Int(args[5]), let pid = Int32(args[6]), rate > 0, minutes > 0 else { break }
    let connections = args.count > 8 ? Int(args[8]) ?? 64 : 64
    Soak(wire: Wire(port: port), rate: rate, minutes: minutes, pid: pid, walPath: args[7], connections: connections)
        .run(subscribers: subscribers)
    exit(0)
default:
    break
}
FileHandle.standardError.write(Data(usage.utf8))
exit(2)
