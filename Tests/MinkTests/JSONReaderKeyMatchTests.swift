import Testing
@testable import Mink

/// `JSONReader.nextKey(among:)` (the projection fold's member lookup) sees exactly the names and
/// errors `nextKey()` sees.
@Suite(.timeLimit(.minutes(3))) struct JSONReaderKeyMatchTests {
    static let names = ["id", "price", "é", "a\"b"].map { Array($0.utf8) }

    /// The members of an object as `nextKey()` reads them, and as `nextKey(among:)` matches them.
    func both(_ text: String) -> (plain: Result<[String], JSONError>, matched: Result<[JSONMemberName], JSONError>) {
        func run<T>(_ next: (inout JSONReader) throws -> T?) -> Result<[T], JSONError> {
            var reader = JSONReader(text)
            do {
                try reader.beginObject()
                var out: [T] = []
                while let k = try next(&reader) {
                    out.append(k)
                    try reader.skipValue()
                }
                try reader.finish()
                return .success(out)
            } catch let e as JSONError {
                return .failure(e)
            } catch {
                return .failure(JSONError.syntax("\(error)", at: -1))
            }
        }
        return (run { try $0.nextKey() }, run { try $0.nextKey(among: Self.names) })
    }

    @Test(arguments: [
        #"{"id":1,"price":2.5,"sku":"x"}"#, #" { "sku" : [1,{"id":2}] , "id" : "a" , "id" : "b" } "#, #"{}"#,
        #"{"\u00e9":1,"\u0069d":2,"a\"b":3,"a\\b":4,"pric":5,"prices":6}"#, #"{"é":1}"#,
    ])
    func matchesWhatNextKeyReads(_ text: String) throws {
        let (plain, matched) = both(text)
        let keys = try plain.get()
        let expected: [JSONMemberName] = keys.map { k in
            Self.names.firstIndex(of: Array(k.utf8)).map { .listed($0) } ?? .other
        }
        #expect(try matched.get() == expected)
    }

    @Test(arguments: [#"{"id":1,}"#, #"{"id" 1}"#, #"{"id":1 "price":2}"#, #"{id:1}"#, #"{"i\d":1}"#, #"{"id":1"#, "{\"\u{1}\":1}"])
    func refusesWhatNextKeyRefuses(_ text: String) {
        let (plain, matched) = both(text)
        guard case .failure(let a) = plain, case .failure(let b) = matched else {
            Issue.record("accepted \(text): \(plain) \(matched)")
            return
        }
        #expect(a == b)
    }
}
