import ArgumentParser

/// `mink`, the command-line client of minkd (docs/cli.md).
@main
struct MinkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mink",
        abstract: "The command-line client of minkd, the event store server.",
        discussion: """
            Connection: --url / MINK_URL (default http://127.0.0.1:6465), --token / MINK_TOKEN, \
            --tenant / MINK_TENANT. Output is readable text on a terminal and JSON lines when piped \
            or with --json. Exit codes: 0 success, 1 other error, 3 conflict, 4 not found, \
            5 authentication or authorisation, 6 server unavailable.
            """,
        version: "0.1.0",
        subcommands: [
            Append.self, Read.self, Log.self, Tail.self, Streams.self, QueryCommand.self, Get.self,
            Projections.self, Tenants.self, Export.self, Import.self,
        ]
    )
}
