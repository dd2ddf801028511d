using PumpFleet.EventStore;
using PumpFleet.EventStore.Local;

namespace PumpFleet.Silo.Hosting;

/// <summary>
/// Resolves the PostgreSQL connection: <c>ConnectionStrings:PumpFleet</c> when configured, otherwise (local use only)
/// a private server started from the system's binaries in <c>PumpFleet:LocalPostgres:DataDirectory</c>.
/// </summary>
public static class PumpFleetDatabase
{
    /// <summary>Returns the connection string and, when one was started, the private server (to stop at exit).</summary>
    public static async Task<(string ConnectionString, PrivatePostgres? Server)> ResolveAsync(IConfiguration config, Action<string> progress, CancellationToken ct = default)
    {
        var cs = config.GetConnectionString(EventStoreServiceCollectionExtensions.ConnectionStringName);
        if (!string.IsNullOrWhiteSpace(cs))
        {
            return (cs, null);
        }

        if (!config.GetValue("PumpFleet:LocalPostgres:Enabled", false))
        {
            throw new InvalidOperationException(
                "No database configured: set ConnectionStrings:PumpFleet (env ConnectionStrings__PumpFleet), " +
                "or PumpFleet:LocalPostgres:Enabled=true to start a private PostgreSQL for local use.");
        }

        var dir = config["PumpFleet:LocalPostgres:DataDirectory"] is { Length: > 0 } d ? d : Path.Combine(".data", "pg");
        var server = await PrivatePostgres.StartAsync(dir, durable: true, progress, ct);
        return (server.ConnectionString(), server);
    }
}
