import Mink
import Yams

/// Parses and checks the `projections:` list of the config file.
enum ProjectionParser {
    static func parse(_ node: ConfigNode) throws -> [ProjectionDefinition] {
        var definitions: [ProjectionDefinition] = []
        for projectionNode in try node.sequence() {
            let definition = try projection(projectionNode)
            if let earlier = definitions.firstIndex(where: { $0.name == definition.name }) {
                throw ConfigError(keyPath: "\(projectionNode.path).name", message: "\"\(definition.name)\" is already the name of projections[\(earlier)]")
            }
            if let earlier = definitions.firstIndex(where: { $0.readModel == definition.readModel }) {
                throw ConfigError(
                    keyPath: "\(projectionNode.path).readModel",
                    message: "read model \"\(definition.readModel)\" is already written by projections[\(earlier)]"
                )
            }
            definitions.append(definition)
        }
        return definitions
    }

    /// `^[a-z][a-z0-9_]{0,62}$`: names that are safe as table names and URL segments.
    static func isName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...63).contains(bytes.count) else { return false }
        for (index, byte) in bytes.enumerated() {
            let lower = byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")
            let digitOrUnderscore = (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "_")
            guard lower || (index > 0 && digitOrUnderscore) else { return false }
        }
        return true
    }

    private static func name(_ node: ConfigNode) throws -> String {
        let value = try node.string()
        guard isName(value) else {
            throw ConfigError(keyPath: node.path, message: "invalid name \"\(value)\": must match ^[a-z][a-z0-9_]{0,62}$")
        }
        return value
    }

    private static func field(_ text: String, keyPath: String) throws -> String {
        guard FieldPath.isValid(text) else {
            throw ConfigError(keyPath: keyPath, message: "invalid field \"\(text)\": must be a dotted path of identifiers (address.city)")
        }
        return text
    }

    private static func projection(_ node: ConfigNode) throws -> ProjectionDefinition {
        var name: String?, readModel: String?, indexes: [String] = [], handlers: [ProjectionDefinition.Handler]?
        var mode = ProjectionDefinition.Mode.async
        var handlersPath = "\(node.path).handlers"
        for (key, child) in try node.mapping(allowing: ["name", "mode", "readModel", "indexes", "handlers"]) {
            switch key {
            case "name": name = try Self.name(child)
            case "mode":
                let text = try child.string()
                guard let value = ProjectionDefinition.Mode(rawValue: text) else {
                    throw ConfigError(keyPath: child.path, message: "unknown mode \"\(text)\" (expected async or inline)")
                }
                mode = value
            case "readModel": readModel = try Self.name(child)
            case "indexes": indexes = try child.sequence().map { try field($0.string(), keyPath: $0.path) }
            case "handlers":
                handlersPath = child.path
                var list: [ProjectionDefinition.Handler] = []
                for handlerNode in try child.sequence() {
                    let handler = try self.handler(handlerNode)
                    if let earlier = list.firstIndex(where: { $0.event == handler.event }) {
                        throw ConfigError(
                            keyPath: "\(handlerNode.path).event",
                            message: "\"\(handler.event)\" already has a handler (\(child.path)[\(earlier)])"
                        )
                    }
                    list.append(handler)
                }
                handlers = list
            default: break
            }
        }
        guard let name else { throw ConfigError(keyPath: "\(node.path).name", message: "required") }
        guard let handlers, !handlers.isEmpty else { throw ConfigError(keyPath: handlersPath, message: "at least one handler is required") }
        return ProjectionDefinition(name: name, mode: mode, readModel: readModel, indexes: indexes, handlers: handlers)
    }

    private static func handler(_ node: ConfigNode) throws -> ProjectionDefinition.Handler {
        var event: String?, id: ProjectionValue?
        var set: [FieldAssignment] = [], increment: [FieldAssignment] = [], append: [FieldAssignment] = []
        var unset: [String] = []
        var delete = false
        for (key, child) in try node.mapping(allowing: ["event", "id", "set", "increment", "unset", "append", "delete"]) {
            switch key {
            case "event": event = try child.nonEmptyString()
            case "id":
                let value = try self.value(child)
                switch value {
                case .path, .string, .int: id = value
                default: throw ConfigError(keyPath: child.path, message: "must be a path (\"$.data.orderId\") or a string or integer")
                }
            case "set": set = try assignments(child)
            case "increment":
                increment = try assignments(child)
                for (assignment, member) in zip(increment, try child.mapping()) where !assignment.value.isNumberOrPath {
                    throw ConfigError(keyPath: member.1.path, message: "must be a number or a path, found \(member.1.found)")
                }
            case "unset": unset = try child.sequence(orScalar: true).map { try field($0.string(), keyPath: $0.path) }
            case "append": append = try assignments(child)
            case "delete": delete = try child.bool()
            default: break
            }
        }
        guard let event else { throw ConfigError(keyPath: "\(node.path).event", message: "required") }
        guard let id else { throw ConfigError(keyPath: "\(node.path).id", message: "required") }
        let updates = !set.isEmpty || !increment.isEmpty || !unset.isEmpty || !append.isEmpty
        if delete && updates {
            throw ConfigError(keyPath: "\(node.path).delete", message: "cannot be combined with set, increment, unset or append")
        }
        if !delete && !updates {
            throw ConfigError(keyPath: node.path, message: "nothing to do: give set, increment, unset, append or delete: true")
        }
        return ProjectionDefinition.Handler(event: event, id: id, set: set, increment: increment, unset: unset, append: append, delete: delete)
    }

    private static func assignments(_ node: ConfigNode) throws -> [FieldAssignment] {
        try node.mapping().map { field, child in
            FieldAssignment(try self.field(field, keyPath: child.path), try value(child))
        }
    }

    /// A YAML value as a projection value: `$.…` strings are paths, `$$…` escapes a literal `$`.
    static func value(_ node: ConfigNode) throws -> ProjectionValue {
        switch node.node {
        case .scalar(let scalar):
            switch node.node.tagName {
            case .null:
                return .null
            case .bool:
                return .bool(try node.bool())
            case .int:
                guard let value = node.node.int else {
                    throw ConfigError(keyPath: node.path, message: "integer \(scalar.string) is out of range")
                }
                return .int(Int64(value))
            case .float:
                guard let value = node.node.float, value.isFinite else {
                    throw ConfigError(keyPath: node.path, message: "\(scalar.string) is not a finite number")
                }
                return .double(value)
            default:
                let text = scalar.string
                if text.hasPrefix("$$") { return .string(String(text.dropFirst())) }
                if text.hasPrefix("$.") { return .path(try EventPath(parsing: text, keyPath: node.path)) }
                return .string(text)
            }
        case .sequence:
            return .array(try node.sequence().map(value))
        case .mapping:
            return .object(try node.mapping().map { key, child in .init(key, try value(child)) })
        case .alias:
            throw ConfigError(keyPath: node.path, message: "aliases are not supported")
        }
    }
}
