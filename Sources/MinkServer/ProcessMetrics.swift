#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The standard `process_*` series (as Prometheus' client libraries name them) and
/// `minkd_build_info`, appended to `/metrics` (HTTP-API.md section 10).
///
/// Read from `/proc` at each scrape, never on the request path. Where `/proc` is missing (not
/// Linux) only the series that need no `/proc` are written; a series is never written with a
/// made-up value.
enum ProcessMetrics {
    /// The exposition text of the process series and the build info (format 0.0.4).
    static func render(version: String) -> [UInt8] {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String, _ value: Double?) {
            guard let value else { return }
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(format(value))\n"
        }
        let stat = SelfStat.read()
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        family(
            "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
            stat.map { Double($0.utime + $0.stime) / ticks }
        )
        family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
               stat.map { Double($0.rssPages) * Double(sysconf(Int32(_SC_PAGESIZE))) })
        family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", stat.map { Double($0.vsize) })
        family("process_open_fds", "gauge", "Number of open file descriptors.", openDescriptors())
        var limit = rlimit()
        // RLIM_INFINITY (all ones) does not import into Swift as a constant; it is `rlim_t.max`.
        family("process_max_fds", "gauge", "Maximum number of open file descriptors.",
               getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 && limit.rlim_cur != rlim_t.max ? Double(limit.rlim_cur) : nil)
        family("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
               stat.flatMap { s in bootTime().map { $0 + Double(s.startTicks) / ticks } })
        out += "# HELP minkd_build_info The minkd version, as a label; the value is always 1.\n"
        out += "# TYPE minkd_build_info gauge\n"
        out += "minkd_build_info{version=\"\(escapeLabel(version))\"} 1\n"
        return Array(out.utf8)
    }

    /// The fields of `/proc/self/stat` used here (proc(5); fields counted from 1).
    struct SelfStat {
        var utime: UInt64, stime: UInt64, startTicks: UInt64, vsize: UInt64, rssPages: UInt64

        static func read() -> SelfStat? {
            guard let text = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
                // The command name (field 2) is in parentheses and may contain spaces: split after
                // its last `)`; what follows starts at field 3.
                let close = text.lastIndex(of: ")")
            else { return nil }
            let f = text[text.index(after: close)...].split(separator: " ")
            func field(_ n: Int) -> UInt64? { n - 3 < f.count ? UInt64(f[n - 3]) : nil }
            guard let utime = field(14), let stime = field(15), let start = field(22), let vsize = field(23), let rss = field(24)
            else { return nil }
            return SelfStat(utime: utime, stime: stime, startTicks: start, vsize: vsize, rssPages: rss)
        }
    }

    /// Open descriptors: the entries of `/proc/self/fd`, less the one that lists them.
    static func openDescriptors() -> Double? {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return nil }
        return Double(max(0, entries.count - 1))
    }

    /// The boot time (`btime` of `/proc/stat`), in seconds since the epoch.
    static func bootTime() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst(6).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }

    private static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }

    private static func escapeLabel(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
