import Mink
import MinkSQL
import Testing

@Suite(.timeLimit(.minutes(3))) struct SQLPatternTests {
    @Test func escapeLikeMakesWildcardsLiteral() {
        #expect(SQLPattern.escapeLike("a%b_c\\d") == "a\\%b\\_c\\\\d")
        #expect(SQLPattern.escapeLike("plain") == "plain")
    }

    @Test func globTranslation() {
        #expect(SQLPattern.glob(fromLike: "a%") == "a*")
        #expect(SQLPattern.glob(fromLike: "_b") == "?b")
        #expect(SQLPattern.glob(fromLike: "\\%\\_") == "%_")
        #expect(SQLPattern.glob(fromLike: "*?[]") == "[*][?][[]]")
        #expect(SQLPattern.glob(fromLike: "end\\") == "end\\")
    }

    @Test func postgresLikeNormalisation() {
        #expect(SQLPattern.postgresLike(fromLike: "a%_") == "a%_")
        #expect(SQLPattern.postgresLike(fromLike: "\\%x\\_") == "\\%x\\_")
        #expect(SQLPattern.postgresLike(fromLike: "\\a") == "a")
        #expect(SQLPattern.postgresLike(fromLike: "end\\") == "end\\\\")
    }

    @Test func identifiers() throws {
        let name = "mink_events"
        #expect(try SQLIdentifier(name).quoted == "\"mink_events\"")
        for bad in ["", "1a", "a-b", "a\"b", "a b", String(repeating: "a", count: 64), "é"] {
            #expect(throws: MinkError.self) { try SQLIdentifier(bad) }
        }
        #expect(SQLLiteral.quoted("it's") == "'it''s'")
    }
}

@Suite(.timeLimit(.minutes(3))) struct EventFilterSQLTests {
    @Test func columnCategoryTypesAndStreams() {
        var b = SQLBuilder(dialect: .sqlite)
        let parts = EventFilterSQL().conditions(EventFilter(category: "order%", eventTypes: ["A", "B"], streamIDs: ["s-1"]), into: &b)
        #expect(parts == [#""category" = ?"#, #""type" IN (?, ?)"#, #""stream_id" IN (?)"#])
        #expect(b.binds == [.text("order%"), .text("A"), .text("B"), .text("s-1")])
    }

    @Test func prefixCategoryIsEscaped() {
        var b = SQLBuilder(dialect: .postgres, firstParameter: 3)
        let parts = EventFilterSQL(category: .streamIDPrefix).conditions(EventFilter(category: "a_b%"), into: &b)
        #expect(parts == [#"("stream_id" = $3::text OR "stream_id" LIKE $4::text ESCAPE '\')"#])
        #expect(b.binds == [.text("a_b%"), .text("a\\_b\\%-%")])
        var c = SQLBuilder(dialect: .postgres)
        #expect(EventFilterSQL(category: .streamIDPrefix).conditions(EventFilter(category: "a-b"), into: &c) == ["FALSE"])
    }

    @Test func emptyFilterHasNoConditions() {
        var b = SQLBuilder(dialect: .sqlite)
        #expect(EventFilterSQL().conditions(.all, into: &b).isEmpty)
    }
}
