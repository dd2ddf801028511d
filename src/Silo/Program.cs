using PumpFleet.EventStore;
using PumpFleet.Hosting;
using PumpFleet.ServiceDefaults;
using PumpFleet.Silo.Hosting;

// `migrate` applies the schema and exits (the Helm pre-install/upgrade Job runs this).
var migrateOnly = args.Length > 0 && args[0] == "migrate";
var builder = WebApplication.CreateBuilder(migrateOnly ? args[1..] : args);
builder.AddServiceDefaults();
var (connectionString, localServer) = await PumpFleetDatabase.ResolveAsync(builder.Configuration, Console.WriteLine);

if (migrateOnly)
{
    builder.Services.AddPumpFleetEventStore(connectionString);
    builder.Services.AddPumpFleetClusterSchema();
    await using var migrationHost = builder.Build();
    var applied = await migrationHost.Services.GetRequiredService<SchemaMigrator>().MigrateAsync();
    Console.WriteLine(applied.Count == 0 ? "Schema is current." : $"Applied: {string.Join(", ", applied)}");
    return 0;
}

builder.AddPumpFleetSilo(connectionString);
builder.Services.AddOptions<DemoFleetOptions>().BindConfiguration(DemoFleetOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
if (builder.Configuration.GetValue($"{DemoFleetOptions.SectionName}:Enabled", false))
{
    builder.Services.AddHostedService<DemoFleetFeeder>();
}

var app = builder.Build();
await app.Services.GetRequiredService<SchemaMigrator>().MigrateAsync();
app.MapDefaultEndpoints();
app.MapGet("/", () => Results.Text("PumpFleet silo. See /metrics and /health/ready."));

app.Lifetime.ApplicationStarted.Register(() =>
    Console.WriteLine($"PumpFleet is running: {string.Join(", ", app.Urls)} (Ctrl+C to stop)"));
await app.RunAsync();
if (localServer is not null)
{
    await localServer.StopAsync();
}

return 0;
