@testable import MinkServer
import Testing

/// The router's shortcut for plain stream paths answers what the general way answers.
@Suite("router", .timeLimit(.minutes(1)))
struct RouterTests {
    private func outcome(_ body: () throws(RouteFailure) -> Route) -> Result<Route, RouteFailure> {
        do throws(RouteFailure) { return .success(try body()) } catch { return .failure(error) }
    }

    @Test func plainStreamPathsRouteAsTheGeneralWayDoes() throws {
        let paths = [
            "/v1/streams/order-1", "/v1/streams/a", "/v1/streams/Ünïcødé-流", "/v1/streams/$all", "/v1/streams/a:b@c.d",
            "/v1/streams/..", "/v1/streams/a+b", "/v1/streams/", "/v1/streams", "/v1/streams/a/info", "/v1/streams/a/",
            "/v1/streams/a%2Fb", "/v1/streams/%FF", "/v1/streams/a%", "/v1/streamsx/a", "/v1/stream/a", "/v2/streams/a",
            "/v1/streams//a",
        ]
        var routed = 0
        for path in paths {
            for method in ["POST", "GET", "HEAD", "DELETE", "PUT", "PATCH", "OPTIONS"] {
                let fast = outcome { () throws(RouteFailure) in try Router.route(method: method, path: path) }
                let general = outcome { () throws(RouteFailure) in try Router.generalRoute(method: method, path: path) }
                #expect(fast == general, "\(method) \(path)")
                if case .success = fast { routed += 1 }
            }
        }
        // POST, GET, HEAD and DELETE of the eight stream paths with an ID (`a%2Fb` by the general
        // way), GET and HEAD of the listing and of `a/info`.
        #expect(routed == 8 * 4 + 2 + 2)
        #expect(try Router.route(method: "POST", path: "/v1/streams/order-1") == .append("order-1"))
        #expect(try Router.route(method: "GET", path: "/v1/streams/a%2Fb") == .load("a/b"))
    }
}
