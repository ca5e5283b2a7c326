@testable import MinkPostgres
import Testing

@Suite("ListenerStateMachine", .timeLimit(.minutes(3)))
struct ListenerStateMachineTests {
    @Test func firstConnectDoesNotSignalButReconnectDoes() {
        var m = ListenerStateMachine()
        #expect(m.start() == .connect)
        #expect(m.start() == .none)
        #expect(m.connected() == .startListening(signalMissed: false))
        #expect(m.connectionLost() == .connect)
        #expect(m.connected() == .startListening(signalMissed: true))
    }

    @Test func failedConnectsBackOffExponentiallyUpToTheCap() {
        var m = ListenerStateMachine(initialDelay: .milliseconds(100), maxDelay: .seconds(1))
        _ = m.start()
        var delays: [Duration] = []
        for _ in 0..<6 {
            guard case .wait(let d) = m.connectFailed() else { Issue.record("expected a wait"); return }
            delays.append(d)
            #expect(m.waitElapsed() == .connect)
        }
        #expect(delays == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .seconds(1), .seconds(1)])
        // Commits may have been missed while no LISTEN was active, even on the first connection.
        #expect(m.connected() == .startListening(signalMissed: true))
        // After a success the back-off starts over.
        #expect(m.connectionLost() == .connect)
        #expect(m.connectFailed() == .wait(.milliseconds(100)))
    }

    @Test func stopWinsFromEveryState() {
        var m = ListenerStateMachine()
        #expect(m.stop() == .close)
        #expect(m.stop() == .none)
        #expect(m.start() == .none)
        var n = ListenerStateMachine()
        _ = n.start()
        _ = n.connected()
        #expect(n.stop() == .close)
        #expect(n.connectionLost() == .none)
        #expect(n.state == .stopped)
    }

    @Test func eventsThatDoNotApplyAreIgnored() {
        var m = ListenerStateMachine()
        #expect(m.connected() == .none)
        #expect(m.connectFailed() == .none)
        #expect(m.waitElapsed() == .none)
        #expect(m.connectionLost() == .none)
        #expect(m.state == .idle)
    }
}
