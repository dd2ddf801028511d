using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Npgsql;
using PumpFleet.EventStore;
using PumpFleet.Gateway.Hosting;
using PumpFleet.Gateway.Hubs;

namespace PumpFleet.Gateway.Cli;

/// <summary>
/// <c>hubs mosquitto-files</c>: writes an external mosquitto's password file and ACL from the hub registry, once or,
/// with <c>--watch</c>, again after every registry change (LISTEN on the trigger's channel, plus a re-check every
/// 30 s), sending SIGHUP to mosquitto (<c>--reload-pid</c>) when a file changed so it reloads them.
/// </summary>
internal static class MosquittoFilesCli
{
    private static readonly TimeSpan Recheck = TimeSpan.FromSeconds(30);

    public static async Task<int> RunAsync(IServiceProvider services, IConfiguration configuration, Dictionary<string, string?> switches,
        TextWriter stdout, TextWriter stderr, CancellationToken stopToken)
    {
        var directory = switches["out"]!;
        var user = switches.GetValueOrDefault("gateway-user") ?? configuration["Gateway:Mqtt:External:Username"] ?? MosquittoFiles.DefaultGatewayUser;
        var password = configuration["Gateway:Mqtt:External:Password"];
        if (string.IsNullOrEmpty(password) || password.Contains('\n', StringComparison.Ordinal))
        {
            await stderr.WriteLineAsync("Set the gateway's broker password, Gateway:Mqtt:External:Password (environment variable Gateway__Mqtt__External__Password), one line.");
            return 2;
        }

        int? pid = null;
        if (switches.TryGetValue("reload-pid", out var p))
        {
            if (!int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) || parsed < 1)
            {
                await stderr.WriteLineAsync("--reload-pid must be a process id.");
                return 2;
            }

            pid = parsed;
        }

        var store = services.GetRequiredService<HubStore>();
        var iterations = services.GetRequiredService<IOptions<HubAuthOptions>>().Value.BrokerHashIterations;
        // Hashed once per run: regenerating with a fresh salt each time would change the file (and reload the broker) for nothing.
        var gatewayHash = BrokerSecretHasher.Hash(password, Math.Max(1, iterations));
        try
        {
            var first = await MosquittoFiles.WriteAsync(store, directory, user, gatewayHash, CancellationToken.None);
            await ReportAsync(first, stdout, stderr);
            if (first.Changed)
            {
                await ReloadAsync(pid, stdout, stderr);
            }
        }
        catch (ArgumentException e)
        {
            await stderr.WriteLineAsync(e.Message);
            return 1;
        }

        if (!switches.ContainsKey("watch"))
        {
            return 0;
        }

        // Ctrl+C and SIGTERM reach the host's console lifetime, which signals ApplicationStopping.
        var lifetime = services.GetRequiredService<IHostApplicationLifetime>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(stopToken, lifetime.ApplicationStopping);
        await WatchAsync(services.GetRequiredService<UnpooledConnections>(), store, directory, user, gatewayHash, pid, stdout, stderr, stop.Token);
        return 0;
    }

    private static async Task WatchAsync(UnpooledConnections connections, HubStore store, string directory, string user, string gatewayHash, int? pid,
        TextWriter stdout, TextWriter stderr, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                // Its own session, not a pooled one: the LISTEN ends with it (UnpooledConnections).
                await using var conn = await connections.OpenAsync(ct);
                await using (var listen = new NpgsqlCommand($"LISTEN {HubRegistryWatcher.Channel}", conn))
                {
                    await listen.ExecuteNonQueryAsync(ct);
                }

                while (!ct.IsCancellationRequested)
                {
                    // Rewritten after every notification and every Recheck: a change made while not listening is caught too.
                    var r = await MosquittoFiles.WriteAsync(store, directory, user, gatewayHash, ct);
                    if (r.Changed)
                    {
                        await ReportAsync(r, stdout, stderr);
                        await ReloadAsync(pid, stdout, stderr);
                    }

                    await conn.WaitAsync(Recheck, ct);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or IOException or ArgumentException)
            {
                await stderr.WriteLineAsync($"Cannot regenerate the mosquitto files ({e.Message}); retrying in 5 s.");
                await Task.Delay(TimeSpan.FromSeconds(5), ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    private static async Task ReportAsync(MosquittoFilesResult r, TextWriter stdout, TextWriter stderr)
    {
        await stdout.WriteLineAsync($"passwd {r.PasswordFile} ({r.Hubs} hubs)");
        await stdout.WriteLineAsync($"acl {r.AclFile}");
        if (r.WithoutBrokerCredential.Count > 0)
        {
            // Provisioned before the broker credential existed (or with BrokerHashIterations 0): rotate them.
            await stderr.WriteLineAsync($"{r.WithoutBrokerCredential.Count} hub(s) have no broker credential and cannot connect to mosquitto until rotated: {string.Join(", ", r.WithoutBrokerCredential.Take(20))}");
        }
    }

    private static async Task ReloadAsync(int? pid, TextWriter stdout, TextWriter stderr)
    {
        if (pid is null)
        {
            return;
        }

        // mosquitto reloads its password file and ACL on SIGHUP (docs/security.md says what that does to live sessions).
        using var kill = Process.Start(new ProcessStartInfo("kill", ["-HUP", pid.Value.ToString(CultureInfo.InvariantCulture)]) { UseShellExecute = false })
            ?? throw new InvalidOperationException("kill did not start.");
        await kill.WaitForExitAsync();
        await (kill.ExitCode == 0
            ? stdout.WriteLineAsync($"reloaded mosquitto (pid {pid})")
            : stderr.WriteLineAsync($"Could not signal mosquitto (pid {pid}): kill exited with {kill.ExitCode}."));
    }
}
