import Testing
@Test func sqlitePlaceholder() { #expect(Bool(true)) }
