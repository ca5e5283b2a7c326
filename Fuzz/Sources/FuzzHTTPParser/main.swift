// libFuzzer driver: every input is parsed whole and split at two pseudo-random
// points (derived from the input, so findings reproduce); the outcomes must match.
import FuzzSupport
import MinkHTTP

struct Outcome: Equatable {
    var requests: [String] = []
    var error: HTTPParseError?
}

func parse(_ chunks: [ArraySlice<UInt8>]) -> Outcome {
    var parser = HTTPRequestParser(limits: HTTPParserLimits(
        maxRequestLineBytes: 512, maxHeaderBytes: 1024, maxHeaderCount: 16, maxBodyBytes: 4096, maxChunkLineBytes: 128))
    var outcome = Outcome()
    for chunk in chunks {
        parser.feed(chunk)
        do {
            while let r = try parser.next() {
                precondition(r.body.count <= 4096, "body over the limit")
                outcome.requests.append("\(r.method) \(r.target) \(r.version) \(r.headers.map { "\($0.name)=\($0.value)" }) \(r.body)")
            }
        } catch {
            outcome.error = error
            return outcome
        }
    }
    return outcome
}

func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data!, count: size))
    let whole = parse([bytes[...]])
    let (lo, hi) = splitPoints(of: bytes)
    let split = parse([bytes[..<lo], bytes[lo..<hi], bytes[hi...]])
    precondition(split == whole, "outcome differs when split at \(lo), \(hi): \(whole) vs \(split)")
    return 0
}

runLibFuzzer { data, size in fuzzOne(data, size) }
