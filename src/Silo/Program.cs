using PumpFleet.EventStore;
using PumpFleet.Dashboard.Hosting;
using PumpFleet.Gateway.Hosting;
using PumpFleet.Hosting;
using PumpFleet.Projections;
using PumpFleet.ServiceDefaults;
using PumpFleet.Silo.Hosting;

// `migrate` applies the schema and exits (the Helm pre-install/upgrade Job runs this); `projections rebuild [name]`
// and `projections list` reset read models for the running cluster to rebuild from zero; `verify [streamId]` walks
// the event hash chains and the anchors and reports the first broken link of each stream (exit code 1 if any).
if (args is ["verify", .. var verifyArgs])
{
    return await PumpFleet.Silo.Hosting.VerifyCommand.RunAsync(verifyArgs, Console.Out);
}

var migrateOnly = args.Length > 0 && args[0] == "migrate";
var projectionsCommand = PumpFleet.Projections.ProjectionsCommandLine.Matches(args);
var builder = WebApplication.CreateBuilder(migrateOnly ? args[1..] : projectionsCommand ? [.. args.Where(a => a.StartsWith("--", StringComparison.Ordinal))] : args);
builder.AddServiceDefaults();
var (connectionString, localServer) = await PumpFleetDatabase.ResolveAsync(builder.Configuration, Console.WriteLine);

if (migrateOnly)
{
    builder.Services.AddPumpFleetEventStore(connectionString);
    AddSchemas(builder.Services);
    await using var migrationHost = builder.Build();
    var applied = await migrationHost.Services.GetRequiredService<SchemaMigrator>().MigrateAsync();
    Console.WriteLine(applied.Count == 0 ? "Schema is current." : $"Applied: {string.Join(", ", applied)}");
    return 0;
}

if (projectionsCommand)
{
    builder.Services.AddPumpFleetEventStore(connectionString);
    AddSchemas(builder.Services);
    builder.Services.AddPumpFleetReadModels();
    await using var commandHost = builder.Build();
    await commandHost.Services.GetRequiredService<SchemaMigrator>().MigrateAsync();
    return await PumpFleet.Projections.ProjectionsCommandLine.RunAsync(
        [.. args.Where(a => !a.StartsWith("--", StringComparison.Ordinal))], commandHost.Services, Console.Out);
}

builder.AddPumpFleetSilo(connectionString);
builder.Services.AddPumpFleetChainAnchors();
AddSchemas(builder.Services);

// All-in-one (local use): the gateway with its embedded broker and, optionally, a simulated fleet in this process.
var allInOne = builder.Configuration.GetValue("PumpFleet:AllInOne", false);
if (allInOne)
{
    builder.Configuration["ConnectionStrings:PumpFleet"] = connectionString;
    builder.Services.AddPumpFleetGateway(builder.Configuration);
    builder.AddPumpFleetDashboard();
    if (builder.Configuration.GetValue($"{SimulatedFleetService.SectionName}:Enabled", false))
    {
        builder.Services.AddHostedService<SimulatedFleetService>();
    }
}

var app = builder.Build();
await app.Services.GetRequiredService<SchemaMigrator>().MigrateAsync();
app.MapDefaultEndpoints();
if (allInOne)
{
    // The dashboard maps the hub administration and quarantine endpoints too, behind its sign-in.
    app.MapPumpFleetDashboard();
}
else
{
    app.MapGet("/", () => Results.Text("PumpFleet silo. See /metrics and /health/ready."));
}

app.Lifetime.ApplicationStarted.Register(() =>
    Console.WriteLine($"PumpFleet is running: {string.Join(", ", app.Urls)} (Ctrl+C to stop)"));
await app.RunAsync();
if (localServer is not null)
{
    await localServer.StopAsync();
}

return 0;

// Every schema of the platform, so that `migrate` (and the silo's start) prepares the database for every process.
static void AddSchemas(IServiceCollection services)
{
    services.AddPumpFleetClusterSchema();
    services.AddPumpFleetMigrations(typeof(GatewayServiceCollectionExtensions).Assembly);
    services.AddPumpFleetMigrations(typeof(PumpFleet.Projections.ProjectionRunner).Assembly);
}
