// libFuzzer driver for the decoders of untrusted request bodies. The first byte picks the
// decoder (byte % 4), the rest is the body:
//   0: Mink.JSONReader (readValue / readRaw / skipValue / minified; write-and-reread round trip)
//   1: MinkWire.AppendBody.decode (default and tight limits; write-and-redecode round trip)
//   2: MinkWire.ReadModelQueryBody.decode (write-and-redecode round trip)
//   3: MinkWire.NDJSONImportReader (whole vs. split at two input-derived points: same outcome)
// Decoders may throw; a crash, a hang, unbounded memory or a failed precondition is a finding.
import FuzzSupport
import Mink
import MinkWire

/// A `precondition` whose message survives -O (fatalError prints it; precondition only traps).
func check(_ condition: Bool, _ message: @autoclosure () -> String = "check failed") {
    if !condition { fatalError(message()) }
}

func written(_ value: some JSONWritable) -> [UInt8] {
    var w = JSONWriter()
    value.write(to: &w)
    return w.bytes
}

func fuzzJSON(_ body: [UInt8]) {
    var reader = JSONReader(body)
    guard let value = try? reader.readValue(), (try? reader.finish()) != nil else {
        // Must also fail (or at least not crash) on the other entry points.
        var r1 = JSONReader(body); _ = try? r1.readRaw()
        var r2 = JSONReader(body); _ = try? r2.skipValue()
        var r3 = JSONReader(body, maxDepth: 8); _ = try? r3.readValue()
        return
    }
    var r1 = JSONReader(body)
    let raw: RawJSON
    do { raw = try r1.readRaw(); try r1.finish() } catch { fatalError("readValue accepted, readRaw refused: \(error)") }
    var r2 = JSONReader(body)
    do { _ = try r2.skipValue(); try r2.finish() } catch { fatalError("readValue accepted, skipValue refused: \(error)") }
    let min = raw.minified()
    var r3 = JSONReader(min.bytes)
    do {
        let again = try r3.readValue(); try r3.finish()
        check(again == value, "minified value differs")
    } catch { fatalError("minified form refused: \(error)") }
    let out = written(value)
    var r4 = JSONReader(out)
    do {
        let again = try r4.readValue(); try r4.finish()
        check(again == value, "written value differs")
    } catch { fatalError("written form refused: \(error)") }
}

/// An append body with empty metadata (`"metadata":{}`) as absent: the same append (the server
/// reads an absent one as empty), which the writer leaves out.
func normalized(_ body: AppendBody) -> AppendBody {
    var b = body
    if b.metadata == Metadata() { b.metadata = nil }
    for i in b.events.indices where b.events[i].metadata == Metadata() { b.events[i].metadata = nil }
    return b
}

func fuzzAppend(_ body: [UInt8]) {
    _ = try? AppendBody.decode(body, limits: AppendLimits(maxEvents: 4, maxEventBytes: 64, maxTypeBytes: 8))
    _ = try? AppendBody.decode(body, minifyData: false)
    guard let decoded = try? AppendBody.decode(body) else { return }
    check(!decoded.events.isEmpty)
    for i in decoded.events.indices { _ = decoded.effectiveMetadata(ofEvent: i) }
    let out = written(decoded)
    do {
        let again = try AppendBody.decode(out)
        check(normalized(again) == normalized(decoded), "append body differs after write and decode: \(decoded) vs \(again)")
    } catch { fatalError("written append body refused: \(error) \(String(decoding: out, as: UTF8.self))") }
}

func fuzzQuery(_ body: [UInt8]) {
    guard let decoded = try? ReadModelQueryBody.decode(body) else { return }
    let out = written(decoded)
    do {
        let again = try ReadModelQueryBody.decode(out)
        check(again == decoded, "query differs after write and decode: \(decoded) vs \(again)")
    } catch { fatalError("written query refused: \(error) \(String(decoding: out, as: UTF8.self))") }
}

struct ImportOutcome: Equatable {
    var events: [Event] = []
    var error: String?
}

func importAll(_ chunks: [ArraySlice<UInt8>], maxLineBytes: Int = NDJSONImportReader.defaultMaxLineBytes) -> ImportOutcome {
    var reader = NDJSONImportReader(maxLineBytes: maxLineBytes, maxEventBytes: 512)
    var outcome = ImportOutcome()
    do {
        for chunk in chunks { outcome.events += try reader.feed(chunk) }
        outcome.events += try reader.finish()
        check(reader.summary.events == Int64(outcome.events.count), "summary counts \(reader.summary.events), returned \(outcome.events.count)")
    } catch {
        // Events returned by earlier feeds don't count: an import is all or nothing.
        return ImportOutcome(events: [], error: "\(error)")
    }
    return outcome
}

func fuzzImport(_ body: [UInt8]) {
    let whole = importAll([body[...]])
    let (lo, hi) = splitPoints(of: body)
    let split = importAll([body[..<lo], body[lo..<hi], body[hi...]])
    check(split == whole, "import outcome differs when split at \(lo), \(hi): \(whole) vs \(split)")
    _ = importAll(body.map { [$0][...] }, maxLineBytes: 256)
}

func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard size > 0, let data else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let body = Array(bytes.dropFirst())
    switch bytes[0] % 4 {
    case 0: fuzzJSON(body)
    case 1: fuzzAppend(body)
    case 2: fuzzQuery(body)
    default: fuzzImport(body)
    }
    return 0
}

runLibFuzzer { data, size in fuzzOne(data, size) }
