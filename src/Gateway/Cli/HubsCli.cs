using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Audit;
using PumpFleet.Gateway.Hosting;
using PumpFleet.Gateway.Hubs;
using PumpFleet.Clustering;

namespace PumpFleet.Gateway.Cli;

/// <summary>
/// <c>hubs provision|rotate|revoke|pair</c>: hub administration from the command line, with the same configuration
/// (connection string, Orleans client) as the gateway process.
/// </summary>
public static class HubsCli
{
    private const string Usage = """
        usage:
          hubs provision <hubId> [--secret <secret>]   create a hub; prints its secret (generated when omitted)
          hubs rotate <hubId> [--secret <secret>]      give a hub a new secret; prints it
          hubs revoke <hubId>                          the hub can no longer connect
          hubs pair <hubId> <serial>                   pair a pump with a hub (needs the Orleans cluster)
          hubs import <file.csv> [--secrets-out <file>] provision many hubs at once, all or none (header 'hub_id,secret';
                                                       an empty secret is generated and written to --secrets-out)
          hubs mosquitto-files --out <dir> [--gateway-user <name>] [--watch] [--reload-pid <pid>]
                                                       write an external mosquitto's passwd and acl from the registry;
                                                       the gateway's password comes from Gateway:Mqtt:External:Password.
                                                       --watch: rewrite them on every registry change (and signal
                                                       mosquitto with SIGHUP when --reload-pid is given)
        """;

    /// <summary>
    /// Runs the command in <paramref name="args"/> (after "hubs"); returns the exit code. <paramref name="stop"/> ends a
    /// long-running command (<c>mosquitto-files --watch</c>) besides Ctrl+C and SIGTERM.
    /// </summary>
    public static async Task<int> RunAsync(string[] args, string[] hostArgs, TextWriter stdout, TextWriter stderr, CancellationToken stop = default)
    {
        var (command, positional, switches) = Parse(args);
        var secret = switches.GetValueOrDefault("secret");
        var allowed = command switch
        {
            "provision" or "rotate" => ["secret"],
            "mosquitto-files" => ["out", "gateway-user", "watch", "reload-pid"],
            "import" => ["secrets-out"],
            _ => Array.Empty<string>(),
        };
        var arity = command switch { "pair" => 2, "mosquitto-files" => 0, _ => 1 };
        if (command is null || positional.Count != arity || switches.Keys.Any(k => !allowed.Contains(k)) ||
            (command == "mosquitto-files" && !switches.ContainsKey("out")))
        {
            await stderr.WriteLineAsync(Usage);
            return 2;
        }

        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = hostArgs });
        var cs = builder.Configuration.GetConnectionString(GatewayServiceCollectionExtensions.ConnectionStringName);
        if (string.IsNullOrWhiteSpace(cs))
        {
            await stderr.WriteLineAsync("Set ConnectionStrings:PumpFleet (environment variable ConnectionStrings__PumpFleet).");
            return 2;
        }

        // A command prints its result (stdout), not the host's lifecycle chatter; warnings and errors go to stderr.
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Logging:LogLevel:Default"] = "Warning",
            ["Logging:LogLevel:Microsoft.Hosting.Lifetime"] = "Warning",
            ["Logging:LogLevel:PumpFleet"] = "Warning",
        });
        builder.Logging.ClearProviders();
        builder.Logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Services.AddPumpFleetEventStore(cs);
        builder.Services.AddPumpFleetMigrations(typeof(HubsCli).Assembly);
        builder.Services.AddPumpFleetClusterSchema();
        builder.Services.AddOptions<HubAuthOptions>().Bind(builder.Configuration.GetSection(HubAuthOptions.SectionName));
        builder.Services.AddSingleton<HubStore>();
        builder.Services.AddSingleton<HubAdmin>();
        if (command == "pair")
        {
            builder.AddPumpFleetOrleansClient();
        }

        using var host = builder.Build();
        await host.StartAsync();
        try
        {
            // Not with the gateway's least-privileged user in the cluster (the chart sets PumpFleet:MigrateOnStart=false;
            // the migrate Job owns the schema); locally the command prepares its own database.
            if (builder.Configuration.GetValue(SchemaMigrator.MigrateOnStartKey, true))
            {
                await host.Services.GetRequiredService<SchemaMigrator>().MigrateAsync();
            }
            if (command == "mosquitto-files")
            {
                return await MosquittoFilesCli.RunAsync(host.Services, builder.Configuration, switches, stdout, stderr, stop);
            }

            if (command == "import")
            {
                return await ImportAsync(host.Services, positional[0], switches.GetValueOrDefault("secrets-out"), stdout, stderr);
            }

            var admin = host.Services.GetRequiredService<HubAdmin>();
            // The operator is whoever runs the command on this host; the audit trail keeps the OS user name.
            var actor = AuditActor.Operator($"cli:{Environment.UserName}@{Environment.MachineName}");
            var hubId = positional[0];
            switch (command)
            {
                case "provision":
                case "rotate":
                    var r = command == "provision"
                        ? await admin.ProvisionAsync(hubId, secret, actor, null, CancellationToken.None)
                        : await admin.RotateAsync(hubId, secret, actor, null, CancellationToken.None);
                    if (r.Status != HubAdminStatus.Ok)
                    {
                        await stderr.WriteLineAsync(Explain(r.Status, hubId));
                        return 1;
                    }

                    await stdout.WriteLineAsync($"hub {r.HubId}");
                    await stdout.WriteLineAsync($"secret {r.Secret}");
                    return 0;
                case "revoke":
                    var s = await admin.RevokeAsync(hubId, actor, null, CancellationToken.None);
                    await (s == HubAdminStatus.Ok ? stdout.WriteLineAsync($"hub {hubId} revoked") : stderr.WriteLineAsync(Explain(s, hubId)));
                    return s == HubAdminStatus.Ok ? 0 : 1;
                default:
                    var p = await admin.PairAsync(hubId, positional[1], actor, null, CancellationToken.None);
                    await (p == HubAdminStatus.Ok
                        ? stdout.WriteLineAsync($"pump {positional[1]} paired with hub {hubId}")
                        : stderr.WriteLineAsync(Explain(p, hubId)));
                    return p == HubAdminStatus.Ok ? 0 : 1;
            }
        }
        finally
        {
            await host.StopAsync();
        }
    }

    // hubs import: validated and provisioned all or none (HubImport); audited as hubs.import, a refused file too.
    private static async Task<int> ImportAsync(IServiceProvider services, string file, string? secretsOut, TextWriter stdout, TextWriter stderr)
    {
        if (!File.Exists(file))
        {
            await stderr.WriteLineAsync($"{file}: no such file.");
            return 2;
        }

        if (secretsOut is not null && File.Exists(secretsOut))
        {
            await stderr.WriteLineAsync($"{secretsOut} exists: generated secrets are written to a new file only.");
            return 2;
        }

        var actor = AuditActor.Operator($"cli:{Environment.UserName}@{Environment.MachineName}");
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var import = new HubImport(services.GetRequiredService<Npgsql.NpgsqlDataSource>(), services.GetRequiredService<IOptions<HubAuthOptions>>().Value);
        HubImportOutcome outcome;
        using (var reader = new StreamReader(file))
        {
            // Generated secrets need somewhere to go before anything is provisioned: checked on the parsed file.
            var (rows, _) = await HubImport.ParseAsync(reader);
            if (secretsOut is null && rows.Any(r => r.Secret is null))
            {
                await stderr.WriteLineAsync($"{file}: some hubs have no secret; give --secrets-out <file> to receive the generated ones.");
                return 2;
            }
        }

        using (var reader = new StreamReader(file))
        {
            outcome = await import.ImportAsync(reader, actor.Name);
        }

        await services.GetRequiredService<AuditLog>().WriteAsync(new AuditEntry(actor, "hubs.import", Path.GetFileName(file), outcome.Done ? 200 : 400, null,
            new Dictionary<string, string?>
            {
                ["file"] = Path.GetFullPath(file),
                ["provisioned"] = outcome.Provisioned.Count.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["firstError"] = outcome.Errors.FirstOrDefault()?.ToString(),
            }));
        if (!outcome.Done)
        {
            foreach (var e in outcome.Errors)
            {
                await stderr.WriteLineAsync($"{file}: {e}");
            }

            await stderr.WriteLineAsync($"{file}: nothing provisioned ({outcome.Errors.Count}{(outcome.Errors.Count >= HubImport.ErrorLimit ? "+" : "")} error(s)); fix the lines above and run it again.");
            return 1;
        }

        var generated = outcome.Provisioned.Where(p => p.Generated).ToList();
        if (generated.Count > 0)
        {
            // Owner-only from the first byte: the file holds the only copy of these secrets.
            var create = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                create.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            await using var f = new FileStream(secretsOut!, create);
            await using var w = new StreamWriter(f);
            await w.WriteLineAsync(HubImport.Header);
            foreach (var (hubId, secret, _) in generated)
            {
                await w.WriteLineAsync($"{hubId},{secret}");
            }
        }

        await stdout.WriteLineAsync($"Provisioned {outcome.Provisioned.Count:N0} hubs from {file} in {sw.Elapsed.TotalSeconds:N1} s" +
            (generated.Count > 0 ? $"; {generated.Count:N0} generated secrets written to {secretsOut}." : "."));
        return 0;
    }

    private static string Explain(HubAdminStatus s, string hubId) => s switch
    {
        HubAdminStatus.InvalidId => "Invalid id: hub ids and serials must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$.",
        HubAdminStatus.Exists => $"Hub {hubId} already exists; use 'hubs rotate'.",
        HubAdminStatus.NotFound => $"Hub {hubId} is not provisioned (or is revoked).",
        HubAdminStatus.Revoked => $"Hub {hubId} is revoked; a revocation is final. Provision the device under a new hub id.",
        HubAdminStatus.WeakSecret => $"The secret must be at least {HubAdmin.MinSecretLength} characters.",
        _ => s.ToString(),
    };

    private static (string? Command, List<string> Positional, Dictionary<string, string?> Switches) Parse(string[] args)
    {
        if (args.Length == 0 || args[0] is not ("provision" or "rotate" or "revoke" or "pair" or "mosquitto-files" or "import"))
        {
            return (null, [], []);
        }

        var positional = new List<string>();
        var switches = new Dictionary<string, string?>(StringComparer.Ordinal);
        for (var i = 1; i < args.Length; i++)
        {
            if (args[i] == "--watch")
            {
                switches["watch"] = null;
            }
            else if (args[i].StartsWith("--", StringComparison.Ordinal))
            {
                if (i + 1 >= args.Length)
                {
                    return (null, [], []);
                }

                switches[args[i][2..]] = args[++i];
            }
            else
            {
                positional.Add(args[i]);
            }
        }

        return (args[0], positional, switches);
    }
}
