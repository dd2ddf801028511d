using PumpFleet.Projections;
using PumpFleet.Silo.Hosting;

// Composition and command dispatch only (tests/Architecture.Tests keeps it that way); the commands are in SiloCommands.
// `migrate` applies the schema and exits; `projections rebuild [name]` / `projections list` reset read models for the
// running cluster; anything else runs the silo.
return args switch
{
    ["migrate", .. var rest] => await SiloCommands.MigrateAsync(rest),
    _ when ProjectionsCommandLine.Matches(args) => await SiloCommands.ProjectionsAsync(args),
    _ => await SiloCommands.RunAsync(args),
};
