import Testing
@testable import Mink

@Suite(.timeLimit(.minutes(3))) struct JSONReaderTests {
    /// Validates `text` as one JSON document, returning the error if any.
    func validationError(_ text: String) -> JSONError? {
        validationError(Array(text.utf8))
    }

    func validationError(_ bytes: [UInt8], maxDepth: Int = 512) -> JSONError? {
        do {
            _ = try RawJSON(validating: bytes, maxDepth: maxDepth)
            return nil
        } catch let error as JSONError {
            return error
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    @Test(arguments: [
        "0", "-0", "1.5", "-1.5e-3", "1E+2", "12345678901234567890", "1e400", "true", "false", "null",
        #""""#, #""\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00""#, "[]", "{}", " [ 1 , 2 ] ", #"{"a":{"b":[null]}}"#,
        "\"é€😀\"", #"{"a":1,"a":2}"#,
    ])
    func acceptsValidJSON(_ text: String) {
        #expect(validationError(text) == nil)
    }

    @Test(arguments: [
        ("", "invalid JSON at byte 0: unexpected end of input"),
        ("[1,]", "invalid JSON at byte 3: trailing comma in an array"),
        (#"{"a":1,}"#, "invalid JSON at byte 7: trailing comma in an object"),
        ("NaN", "invalid JSON at byte 0: unexpected character 'N'"),
        ("Infinity", "invalid JSON at byte 0: unexpected character 'I'"),
        ("-Infinity", "invalid JSON at byte 1: expected a digit after '-'"),
        ("01", "invalid JSON at byte 0: leading zeros are not allowed in numbers"),
        ("1.", "invalid JSON at byte 2: expected a digit after the decimal point"),
        (".5", "invalid JSON at byte 0: unexpected character '.'"),
        ("1e", "invalid JSON at byte 2: expected a digit in the exponent"),
        ("+1", "invalid JSON at byte 0: unexpected character '+'"),
        (#""\x""#, "invalid JSON at byte 1: invalid escape sequence"),
        (#""\u12""#, "invalid JSON at byte 1: incomplete \\u escape"),
        (#""\u12zz""#, "invalid JSON at byte 5: invalid hex digit in \\u escape"),
        (#""\uD800""#, "invalid JSON at byte 1: unpaired surrogate in \\u escape"),
        (#""\uDC00""#, "invalid JSON at byte 1: unpaired surrogate in \\u escape"),
        (#""\uD800\u0041""#, "invalid JSON at byte 1: unpaired surrogate in \\u escape"),
        ("\"a\tb\"", "invalid JSON at byte 2: unescaped control character 0x9 in a string"),
        ("\"abc", "invalid JSON at byte 0: unterminated string"),
        ("[1 2]", "invalid JSON at byte 3: expected ',' or ']' in an array"),
        (#"{"a" 1}"#, "invalid JSON at byte 5: expected ':' after a member name"),
        ("{a:1}", "invalid JSON at byte 1: expected a member name in double quotes"),
        ("[1]x", "invalid JSON at byte 3: unexpected data after the JSON value"),
        ("tru", "invalid JSON at byte 0: invalid literal"),
        ("nul", "invalid JSON at byte 0: invalid literal"),
        ("[", "invalid JSON at byte 1: unexpected end of input"),
        ("{\"a\":1", "invalid JSON at byte 6: unexpected end of input inside an object"),
        ("// c\n1", "invalid JSON at byte 0: unexpected character '/'"),
        ("'a'", "invalid JSON at byte 0: unexpected character '''"),
    ])
    func rejectsMalformedJSON(_ text: String, _ message: String) {
        let error = validationError(text)
        #expect(error?.kind == .syntax)
        #expect(error?.message == message)
    }

    @Test func rejectsInvalidUTF8() {
        let cases: [([UInt8], String)] = [
            ([0x22, 0xC3, 0x22], "invalid JSON at byte 1: invalid UTF-8 sequence"),  // truncated 2-byte
            ([0x22, 0xC0, 0xAF, 0x22], "invalid JSON at byte 1: invalid UTF-8 byte 0xC0"),  // overlong '/'
            ([0x22, 0xE0, 0x80, 0xAF, 0x22], "invalid JSON at byte 1: invalid UTF-8 sequence"),  // overlong
            ([0x22, 0xED, 0xA0, 0x80, 0x22], "invalid JSON at byte 1: invalid UTF-8 sequence"),  // surrogate
            ([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], "invalid JSON at byte 1: invalid UTF-8 sequence"),  // > U+10FFFF
            ([0x22, 0xFF, 0x22], "invalid JSON at byte 1: invalid UTF-8 byte 0xFF"),
            ([0x22, 0x80, 0x22], "invalid JSON at byte 1: invalid UTF-8 byte 0x80"),
            ([0x22, 0xF0, 0x9F, 0x98], "invalid JSON at byte 1: truncated UTF-8 sequence"),
            ([0xEF, 0xBB, 0xBF, 0x31], "invalid JSON at byte 0: unexpected byte 0xEF"),  // BOM
        ]
        for (bytes, message) in cases {
            #expect(validationError(bytes)?.message == message)
        }
    }

    @Test func limitsNestingDepth() {
        let deep = String(repeating: "[", count: 513) + String(repeating: "]", count: 513)
        #expect(validationError(deep)?.message == "invalid JSON at byte 512: nesting deeper than 512 levels")
        let ok = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        #expect(validationError(ok) == nil)
        // A huge depth must not overflow the stack.
        let huge = String(repeating: "[", count: 200_000)
        #expect(validationError(huge)?.kind == .syntax)
        // The depth also counts containers opened through the pull API.
        var reader = JSONReader(#"{"a":[[1]]}"#, maxDepth: 2)
        #expect(throws: JSONError.self) {
            try reader.beginObject()
            _ = try reader.nextKey()
            try reader.skipValue()
        }
    }

    @Test func pullsValuesAndReportsTypeMismatches() throws {
        var reader = JSONReader(#" {"s": "x\u00e9", "n": -42, "b": false, "z": null, "raw": {"k" : [1, 2]}} "#)
        try reader.beginObject()
        #expect(try reader.nextKey() == "s")
        #expect(try reader.readString() == "xé")
        #expect(try reader.nextKey() == "n")
        #expect(try reader.readInt() == -42)
        #expect(try reader.nextKey() == "b")
        #expect(try reader.readBool() == false)
        #expect(try reader.nextKey() == "z")
        #expect(try reader.readNullIfPresent())
        #expect(try reader.nextKey() == "raw")
        #expect(try reader.readRaw().string == #"{"k" : [1, 2]}"#)
        #expect(try reader.nextKey() == nil)
        try reader.finish()

        var mismatch = JSONReader(#"{"a": 1}"#)
        #expect(throws: JSONError(.unexpectedValue, "expected a string, found an object", offset: 0)) {
            _ = try mismatch.readString()
        }
        var fraction = JSONReader("1.5")
        #expect(throws: JSONError(.unexpectedValue, "expected an integer, found 1.5", offset: 0)) {
            _ = try fraction.readInt()
        }
        var big = JSONReader("9223372036854775808")
        #expect(throws: JSONError(.unexpectedValue, "integer 9223372036854775808 is out of range", offset: 0)) {
            _ = try big.readInt()
        }
        var min = JSONReader("-9223372036854775808")
        #expect(try min.readInt() == Int64.min)
    }

    /// A value of the wrong kind is a type error only when it is a value: a broken literal where
    /// another kind was expected is a syntax error with its offset (it was "found null").
    @Test(arguments: [
        ("nul", 0), ("tru", 0), ("fxyz", 0), ("nullgarbage", 4), ("{\"limit\":fals}", 9), ("{\"a\": nul}", 6),
        ("-x", 1),
    ])
    func aBrokenLiteralIsASyntaxErrorNotATypeMismatch(_ input: String, _ offset: Int) throws {
        var reader = JSONReader(input)
        do {
            if input.hasPrefix("{") {
                try reader.beginObject()
                _ = try reader.nextKey()
                _ = try reader.readString()
            } else {
                try reader.beginObject()
            }
            Issue.record("\(input) was read")
        } catch let e as JSONError {
            #expect(e.kind == .syntax, "\(input): \(e)")
            #expect(e.offset == offset, "\(input): \(e)")
        }
        // Valid values of the wrong kind stay type errors.
        for valid in ["null", "true", " false ", "1", "\"s\"", "[]"] {
            var r = JSONReader(valid)
            #expect(throws: JSONError.self) { try r.beginObject() }
            var again = JSONReader(valid)
            do { try again.beginObject() } catch let e as JSONError { #expect(e.kind == .unexpectedValue, "\(valid): \(e)") }
        }
    }

    @Test func readsValueTree() throws {
        var reader = JSONReader(#"{"a":[1,"b",true,null,1e400],"c":{}}"#)
        let value = try reader.readValue()
        #expect(value == ["a": [1, "b", true, nil, .number("1e400")], "c": .object([:])])
        #expect(value.jsonString() == #"{"a":[1,"b",true,null,1e400],"c":{}}"#)
    }
}
