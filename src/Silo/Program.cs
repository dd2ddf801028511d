using PumpFleet.Projections;
using PumpFleet.Silo.Hosting;

// Composition and command dispatch only (tests/Architecture.Tests keeps it that way); the commands are in SiloCommands.
// `migrate` applies the schema and exits; `projections rebuild [name]` / `projections list` reset read models for the
// running cluster; `verify [streamId]` checks the event log's hash chains and anchors; `events partitions | archive |
// verify-archive` manages the event table's months (docs/operations.md); `pumps import` and `hubs import` register a
// fleet in bulk; anything else runs the silo.
return args switch
{
    ["migrate", .. var rest] => await SiloCommands.MigrateAsync(rest),
    ["verify", .. var rest] => await VerifyCommand.RunAsync(rest, Console.Out),
    ["events", .. var rest] => await EventsCommand.RunAsync(rest, Console.Out),
    ["pumps", .. var rest] => await SiloCommands.PumpsAsync(rest),
    ["hubs", .. var rest] => await SiloCommands.HubsAsync(rest),
    _ when ProjectionsCommandLine.Matches(args) => await SiloCommands.ProjectionsAsync(args),
    _ => await SiloCommands.RunAsync(args),
};
