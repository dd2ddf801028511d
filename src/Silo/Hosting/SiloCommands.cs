using PumpFleet.Clustering;
using PumpFleet.Dashboard.Hosting;
using Npgsql;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Audit;
using PumpFleet.EventStore.Registration;
using PumpFleet.Gateway.Hubs;
using PumpFleet.Grains.Pumps;
using PumpFleet.Gateway.Hosting;
using PumpFleet.Projections;
using PumpFleet.ReadModels;
using PumpFleet.ServiceDefaults;

namespace PumpFleet.Silo.Hosting;

/// <summary>The silo process's three commands; Program.cs only picks one.</summary>
internal static class SiloCommands
{
    /// <summary><c>migrate</c>: applies every schema of the platform and exits (the Helm pre-install/upgrade Job runs this).</summary>
    public static async Task<int> MigrateAsync(string[] args)
    {
        var (builder, _) = await CreateBuilderAsync(args);
        await using var host = builder.Build();
        var applied = await host.Services.GetRequiredService<SchemaMigrator>().MigrateAsync();
        Console.WriteLine(applied.Count == 0 ? "Schema is current." : $"Applied: {string.Join(", ", applied)}");
        return 0;
    }

    /// <summary><c>projections rebuild [name] [--actor=&lt;name&gt;]</c> and <c>projections list</c>: reset read models for the running cluster to rebuild from zero (audited).</summary>
    public static async Task<int> ProjectionsAsync(string[] args)
    {
        var (builder, _) = await CreateBuilderAsync([.. args.Where(a => a.StartsWith("--", StringComparison.Ordinal))]);
        builder.Services.AddPumpFleetReadModels();
        await using var host = builder.Build();
        // In the cluster the command runs with the silo's least-privileged user, which cannot migrate; the chart sets
        // PumpFleet:MigrateOnStart=false there (the migrate Job owns the schema).
        if (builder.Configuration.GetValue(SchemaMigrator.MigrateOnStartKey, true))
        {
            await host.Services.GetRequiredService<SchemaMigrator>().MigrateAsync();
        }

        // The whole line: the command reads its words and --actor=<name> (the audit trail's operator) itself.
        return await ProjectionsCommandLine.RunAsync(args, host.Services, Console.Out);
    }

    /// <summary>
    /// <c>hubs …</c>: the gateway's hub administration (<c>hubs import</c> for a fleet's clinic hubs among it), so an
    /// all-in-one installation registers hubs and pumps with one program. <c>--Key=Value</c> words are host settings.
    /// </summary>
    public static Task<int> HubsAsync(string[] args)
    {
        static bool IsSetting(string a) => a.StartsWith("--", StringComparison.Ordinal) && a.Contains('=', StringComparison.Ordinal);
        return Gateway.Cli.HubsCli.RunAsync([.. args.Where(a => !IsSetting(a))], [.. args.Where(IsSetting)], Console.Out, Console.Error);
    }

    /// <summary>
    /// <c>pumps import FILE.csv [--actor=&lt;name&gt;]</c>: registers a fleet's pumps with their hubs in one transaction, all
    /// or none (docs/operations.md "Registering a fleet"); audited as <c>pumps.import</c>, refused imports too.
    /// </summary>
    public static async Task<int> PumpsAsync(string[] args)
    {
        var words = args.Where(a => !a.StartsWith("--", StringComparison.Ordinal)).ToArray();
        if (words is not ["import", var file])
        {
            await Console.Error.WriteLineAsync("usage: pumps import FILE.csv [--actor=<name>]   (FILE: header 'serial,hub_id', one pump per line)");
            return 2;
        }

        OperatorIdentity who;
        try
        {
            who = OperatorIdentity.FromArguments(args);
        }
        catch (ArgumentException e)
        {
            await Console.Error.WriteLineAsync(e.Message);
            return 2;
        }

        if (!File.Exists(file))
        {
            await Console.Error.WriteLineAsync($"{file}: no such file.");
            return 2;
        }

        var (builder, _) = await CreateBuilderAsync([.. args.Where(a => a.StartsWith("--", StringComparison.Ordinal) && !a.StartsWith(OperatorIdentity.ActorOption, StringComparison.Ordinal))]);
        builder.Services.AddSingleton<HubStore>();
        await using var host = builder.Build();
        if (builder.Configuration.GetValue(SchemaMigrator.MigrateOnStartKey, true))
        {
            await host.Services.GetRequiredService<SchemaMigrator>().MigrateAsync();
        }

        var sw = System.Diagnostics.Stopwatch.StartNew();
        var hubs = host.Services.GetRequiredService<HubStore>();
        var import = new PumpImport(new StreamImport(host.Services.GetRequiredService<NpgsqlDataSource>()), TimeProvider.System);
        PumpImportOutcome outcome;
        using (var reader = new StreamReader(file))
        {
            outcome = await import.ImportAsync(reader, who.Actor.Name,
                async (ids, ct) => (await hubs.ActiveSecretHashesAsync(ids, ct)).Keys.ToHashSet(StringComparer.Ordinal));
        }

        await host.Services.GetRequiredService<AuditLog>().WriteAsync(new AuditEntry(who.Actor, "pumps.import", Path.GetFileName(file),
            outcome.Done ? 200 : 400, null, who.Detail(("file", Path.GetFullPath(file)),
                ("registered", outcome.Registered.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                ("firstError", outcome.Errors.FirstOrDefault()?.ToString()))));
        if (!outcome.Done)
        {
            foreach (var e in outcome.Errors)
            {
                await Console.Error.WriteLineAsync($"{file}: {e}");
            }

            await Console.Error.WriteLineAsync($"{file}: nothing registered ({outcome.Errors.Count}{(outcome.Errors.Count >= PumpImport.ErrorLimit ? "+" : "")} error(s)); fix the lines above and run it again.");
            return 1;
        }

        await Console.Out.WriteLineAsync($"Registered {outcome.Registered:N0} pumps from {file} in {sw.Elapsed.TotalSeconds:N1} s.");
        return 0;
    }

    /// <summary>Runs the silo; with <c>PumpFleet:AllInOne</c> (Development) also the gateway, the dashboard and optionally a simulated fleet.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        builder.AddServiceDefaults();
        var (connectionString, localServer) = await PumpFleetDatabase.ResolveAsync(builder.Configuration, Console.WriteLine);
        builder.AddPumpFleetSilo(connectionString);
        builder.Services.AddPumpFleetChainAnchors();
        builder.Services.AddPumpFleetEventRetention();
        AddSchemas(builder.Services);

        // All-in-one (local use): the gateway with its embedded broker and, optionally, a simulated fleet in this process.
        var allInOne = builder.Configuration.GetValue("PumpFleet:AllInOne", false);
        if (allInOne)
        {
            builder.Configuration[$"ConnectionStrings:{EventStoreServiceCollectionExtensions.ConnectionStringName}"] = connectionString;
            builder.Services.AddPumpFleetGateway(builder.Configuration);
            builder.AddPumpFleetDashboard();
            if (builder.Configuration.GetValue($"{SimulatedFleetService.SectionName}:Enabled", false))
            {
                builder.Services.AddHostedService<SimulatedFleetService>();
            }
        }

        var app = builder.Build();
        // The silo owns the schema: `migrate` (the Helm hook) and, unless PumpFleet:MigrateOnStart is false, its own start.
        if (builder.Configuration.GetValue(SchemaMigrator.MigrateOnStartKey, true))
        {
            await app.Services.GetRequiredService<SchemaMigrator>().MigrateAsync();
        }

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
        await StopAsync(localServer);
        return 0;
    }

    // A private local server started here keeps running until the process exits, as before.
    private static async Task<(WebApplicationBuilder Builder, string ConnectionString)> CreateBuilderAsync(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        builder.AddServiceDefaults();
        var (connectionString, _) = await PumpFleetDatabase.ResolveAsync(builder.Configuration, Console.WriteLine);
        builder.Services.AddPumpFleetEventStore(connectionString);
        AddSchemas(builder.Services);
        return (builder, connectionString);
    }

    private static async Task StopAsync(EventStore.Local.PrivatePostgres? localServer)
    {
        if (localServer is not null)
        {
            await localServer.StopAsync();
        }
    }

    // Every schema of the platform, so that `migrate` (and the silo's start) prepares the database for every process.
    private static void AddSchemas(IServiceCollection services)
    {
        services.AddPumpFleetClusterSchema();
        services.AddPumpFleetMigrations(typeof(GatewayServiceCollectionExtensions).Assembly);
        services.AddPumpFleetMigrations(typeof(PumpProjection).Assembly);
        services.AddPumpFleetMigrations(typeof(Projections.ProjectionRunner).Assembly);
    }
}
