import Mink
import MinkWire

/// A projection's status as `GET /v1/projections` writes it: HTTP-API.md section 8's fields in
/// that order, then minkd's additions — `readModel`, `runningHere` (whether this process runs it),
/// `faultedPosition` (when faulted) and `rebuildCheckpoint` (the new copy's checkpoint while
/// rebuilding).
struct ProjectionStatusReply: JSONWritable {
    var status: ProjectionEngine.Status
    var readModel: String

    func write(to w: inout JSONWriter) {
        w.beginObject()
        w.key("name"); w.string(status.name)
        w.key("mode"); w.string(status.mode.rawValue)
        w.key("status"); w.string(status.state.rawValue)
        w.key("checkpoint"); w.int(Int64(clamping: status.checkpoint))
        w.key("head"); w.int(Int64(clamping: status.head))
        w.key("lag"); w.int(Int64(clamping: status.lag))
        w.key("lastError"); w.string(status.lastError)
        w.key("readModel"); w.string(readModel)
        w.key("runningHere"); w.bool(status.runningHere)
        if let p = status.faultedPosition {
            w.key("faultedPosition"); w.int(Int64(clamping: p))
        }
        if let p = status.rebuildCheckpoint {
            w.key("rebuildCheckpoint"); w.int(Int64(clamping: p))
        }
        w.endObject()
    }
}

/// `{"projections": [...]}`.
struct ProjectionListReply: JSONWritable {
    var projections: [ProjectionStatusReply]

    func write(to w: inout JSONWriter) {
        w.beginObject()
        w.key("projections")
        w.beginArray()
        for p in projections { p.write(to: &w) }
        w.endArray()
        w.endObject()
    }
}
