import Foundation
import MinkWire
import Testing

@Suite("Metrics exposition", .timeLimit(.minutes(3)))
struct MetricsEndpointTests {
    /// The exposition follows the text format's rules that `promtool check metrics` lints:
    /// every family has `# HELP` and `# TYPE`, counters end in `_total`, and sample lines parse.
    @Test func expositionIsWellFormedAndCoversProjections() async throws {
        try await withProjectionServer(.memory, yaml: ordersYAML(mode: "async")) { s, _ in
            try await s.append("order-1", [("OrderCreated", #"{"orderId":"o1","total":5}"#)])
            _ = try await s.request("GET", "/v1/streams/order-1")
            _ = try await s.request("POST", "/v1/streams/order-1", json: appendBody(["X"], expected: "0"))
            var text = ""
            for _ in 0..<100 {
                text = try await s.request("GET", "/metrics").text
                if text.contains(#"minkd_projection_lag{projection="orders"} 0"#) && text.contains(#"minkd_projection_checkpoint{projection="orders"} 1"#) { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(text.contains(#"minkd_projection_checkpoint{projection="orders"} 1"#), "\(text)")
            #expect(text.contains(#"minkd_projection_lag{projection="orders"} 0"#))
            #expect(text.contains(#"minkd_projection_faulted{projection="orders"} 0"#))
            #expect(text.contains(#"mink_operations_total{operation="append",outcome="concurrency_conflict"} 1"#))
            var help = Set<String>(), type: [String: String] = [:]
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: " ", maxSplits: 3)
                if line.hasPrefix("# HELP ") { help.insert(String(parts[2])); continue }
                if line.hasPrefix("# TYPE ") { type[String(parts[2])] = String(parts[3]); continue }
                #expect(!line.hasPrefix("#"), "unexpected comment \(line)")
                let sample = line.split(separator: " ")
                #expect(sample.count == 2 && Double(sample[1]) != nil, "sample line \(line)")
            }
            #expect(!type.isEmpty)
            for (family, kind) in type {
                #expect(help.contains(family), "\(family) has no HELP")
                if kind == "counter" { #expect(family.hasSuffix("_total"), "\(family)") }
            }
        }
    }
}
