import Testing
@testable import MinkHTTP

/// The server connection's lifecycle, driven by hand: the legal sequences, the illegal
/// transitions refused, and the facts the connection and the server read from it.
@Suite(.timeLimit(.minutes(3))) struct ServerConnectionLifecycleTests {
    typealias Lifecycle = ServerConnection.Lifecycle

    static func idleTask() -> Task<Void, Never> { Task {} }

    @Test func registrationOpensWatchingForInputOnly() {
        var l = Lifecycle.unregistered
        #expect(l.registration == nil && !l.isOpen && !l.isClosed)
        let step1 = l.registered(token: 7)
        #expect(step1)
        #expect(l.registration == ServerConnection.Registration(token: 7, readable: true, writable: false))
        #expect(l.isOpen && !l.isLingering)
        guard case .open(_, .none) = l else {
            Issue.record("expected open with no response, got \(l)")
            return
        }
        let step2 = l.registered(token: 8)
        #expect(!step2, "registering twice is illegal")
    }

    @Test func aResponderThenAStreamThenTheNextRequest() {
        var l = Lifecycle.unregistered
        _ = l.registered(token: 1)
        let task = Self.idleTask()
        let step3 = l.streamStarted(cancelled: false)
        #expect(!step3, "no stream without a responder task")
        let step4 = l.responderStarted(task, safe: false)
        #expect(step4)
        let step5 = l.responderStarted(task, safe: false)
        #expect(!step5, "one response at a time")
        #expect(l.streamTask == nil, "a plain responder is not a stream")
        let step6 = l.closeRequested()
        #expect(!step6, "the machine never closes while a response runs")
        let step7 = l.streamStarted(cancelled: false)
        #expect(step7)
        #expect(l.streamTask != nil)
        let step8 = l.streamCancelled()
        #expect(step8)
        guard case .open(_, .streaming(_, cancelled: true)) = l else {
            Issue.record("expected a cancelled stream, got \(l)")
            return
        }
        let step9 = l.responseFinished()
        #expect(step9)
        let step10 = l.streamCancelled()
        #expect(l.streamTask == nil && !step10)
        let step11 = l.responseFinished()
        #expect(!step11, "no response to finish")
        // The next request on the kept-alive connection.
        let step12 = l.responderStarted(Self.idleTask(), safe: false)
        #expect(step12)
        let step13 = l.responseFinished()
        #expect(step13)
        guard case .open(_, .none) = l else {
            Issue.record("expected open with no response, got \(l)")
            return
        }
    }

    @Test func closeFlushesThenLingersReadingOnlyThenCloses() {
        var l = Lifecycle.unregistered
        _ = l.registered(token: 3)
        // Output was waiting for room, input paused (pipelined backlog).
        let step14 = l.setInterest(readable: false, writable: true)
        #expect(step14 == ServerConnection.Registration(token: 3, readable: false, writable: true))
        let step15 = l.lingerStarted(deadline: 1)
        #expect(step15 == nil, "lingering only follows closing")
        let step16 = l.closeRequested()
        #expect(step16)
        guard case .closing = l else {
            Issue.record("expected closing, got \(l)")
            return
        }
        let step17 = l.closeRequested()
        #expect(step17, "a second close changes nothing and is legal")
        #expect(!l.isOpen && !l.isLingering && l.registration != nil)
        let before = l.lingerStarted(deadline: 99)
        #expect(before == ServerConnection.Registration(token: 3, readable: false, writable: true))
        #expect(l.isLingering)
        #expect(l.registration == ServerConnection.Registration(token: 3, readable: true, writable: false),
                "a lingering socket drains input and has nothing to write")
        guard case .lingering(_, deadline: 99) = l else {
            Issue.record("expected lingering until 99, got \(l)")
            return
        }
        let previous = l.close()
        #expect(previous.isLingering && l.isClosed && l.registration == nil)
        let step18 = l.closeRequested()
        #expect(step18, "hops arriving after the close are absorbed")
        let step19 = l.setInterest(readable: false)
        #expect(step19 == nil)
    }

    @Test func interestChangesAreReportedOnlyWhenTheyChangeSomething() {
        var l = Lifecycle.unregistered
        let step20 = l.setInterest(readable: false)
        #expect(step20 == nil, "nothing registered")
        _ = l.registered(token: 5)
        let step21 = l.setInterest(readable: true)
        #expect(step21 == nil, "already watched for input")
        let step22 = l.setInterest(writable: true)
        #expect(step22?.writable == true)
        let step23 = l.setInterest(writable: true)
        #expect(step23 == nil)
        let step24 = l.setInterest(readable: false, writable: false)
        #expect(step24 == ServerConnection.Registration(token: 5, readable: false, writable: false))
    }

    @Test func closingFromAnyStateReturnsWhatWasHeld() {
        var l = Lifecycle.unregistered
        _ = l.registered(token: 2)
        _ = l.responderStarted(Self.idleTask(), safe: false)
        _ = l.streamStarted(cancelled: false)
        let previous = l.close()
        #expect(previous.streamTask != nil, "the closer cancels the stream it gets back")
        #expect(previous.registration?.token == 2, "and unregisters the token")
        let step25 = l.close()
        #expect(step25.isClosed)
    }
}
