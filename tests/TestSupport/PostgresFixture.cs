using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Local;
using Xunit;

namespace PumpFleet.TestSupport;

/// <summary>
/// One PostgreSQL server per test assembly: the one named by <c>PUMPFLEET_TEST_PG</c> (an admin connection string,
/// loopback only), or a private server started from the system binaries on a free loopback port. Each test gets
/// its own database, so tests never see each other's rows.
/// </summary>
public sealed class PostgresFixture : IAsyncLifetime
{
    private PrivatePostgres? _server;
    private string _adminConnectionString = "";

    /// <summary>The private server, when this fixture started one (null with <c>PUMPFLEET_TEST_PG</c>).</summary>
    public PrivatePostgres? Server => _server;

    /// <inheritdoc />
    public async ValueTask InitializeAsync()
    {
        var external = Environment.GetEnvironmentVariable("PUMPFLEET_TEST_PG");
        if (!string.IsNullOrWhiteSpace(external))
        {
            var host = new NpgsqlConnectionStringBuilder(external).Host ?? "";
            if (host is not ("127.0.0.1" or "localhost" or "::1"))
            {
                throw new InvalidOperationException($"PUMPFLEET_TEST_PG must point at loopback, not '{host}'.");
            }

            _adminConnectionString = external;
            return;
        }

        _server = await PrivatePostgres.StartAsync(durable: false);
        _adminConnectionString = _server.ConnectionString();
    }

    /// <summary>Creates an empty database with a unique name and returns its connection string.</summary>
    public async Task<string> CreateEmptyDatabaseAsync(string prefix = "t")
    {
        var name = $"{prefix.ToLowerInvariant()}_{Guid.NewGuid():N}"[..Math.Min(prefix.Length + 13, 63)];
        await using (var conn = new NpgsqlConnection(_adminConnectionString))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", conn);
            await cmd.ExecuteNonQueryAsync();
        }

        return new NpgsqlConnectionStringBuilder(_adminConnectionString) { Database = name }.ConnectionString;
    }

    /// <summary>
    /// Creates a unique database with every PumpFleet migration from <paramref name="extra"/> applied, and those of the
    /// PumpFleet projects they reference (the read models' tables need the projection engine's, as in the silo).
    /// </summary>
    public async Task<string> CreateDatabaseAsync(string prefix = "t", params System.Reflection.Assembly[] extra)
    {
        var cs = await CreateEmptyDatabaseAsync(prefix);
        await using var ds = NpgsqlDataSource.Create(cs);
        var migrator = new SchemaMigrator(ds, WithReferences(extra).Select(a => new MigrationAssembly(a)), NullLogger<SchemaMigrator>.Instance);
        await migrator.MigrateAsync();
        return cs;
    }

    // The assemblies and every PumpFleet assembly they reference, directly or not, that carries migrations (the event
    // store's own are always applied by the migrator).
    private static List<System.Reflection.Assembly> WithReferences(System.Reflection.Assembly[] roots)
    {
        var found = new List<System.Reflection.Assembly>();
        var seen = new HashSet<string>(StringComparer.Ordinal) { typeof(SchemaMigrator).Assembly.GetName().Name! };
        var queue = new Queue<System.Reflection.Assembly>(roots);
        while (queue.TryDequeue(out var a))
        {
            if (!seen.Add(a.GetName().Name!))
            {
                continue;
            }

            if (a.GetManifestResourceNames().Any(n => n.Contains(".Sql.", StringComparison.Ordinal) && n.EndsWith(".sql", StringComparison.Ordinal)))
            {
                found.Add(a);
            }

            foreach (var r in a.GetReferencedAssemblies().Where(r => r.Name?.StartsWith("PumpFleet.", StringComparison.Ordinal) == true))
            {
                queue.Enqueue(System.Reflection.Assembly.Load(r));
            }
        }

        return found;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}
