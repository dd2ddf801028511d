using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;
using PumpFleet.EventStore;
using PumpFleet.Projections.Tests.Seed;
using PumpFleet.TestSupport;
using PumpFleet.ReadModels;

namespace PumpFleet.Projections.Tests;

/// <summary>A fresh migrated database per test with the event store, the projections and a runner.</summary>
public abstract class ProjectionTestBase(PostgresFixture pg) : IAsyncLifetime
{
    private readonly List<ServiceProvider> _providers = [];
    private readonly Dictionary<string, ProjectionRunner> _checkers = new(StringComparer.Ordinal);

    protected PostgresFixture Pg { get; } = pg;
    protected string ConnectionString { get; private set; } = "";
    protected ServiceProvider Services { get; private set; } = null!;
    protected IEventStore Store => Services.GetRequiredService<IEventStore>();
    protected ProjectionRunner Runner => Services.GetRequiredService<ProjectionRunner>();
    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        ConnectionString = await Pg.CreateDatabaseAsync("proj", typeof(PumpProjection).Assembly);
        Services = Build(ConnectionString);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var p in _providers)
        {
            await p.DisposeAsync();
        }
    }

    /// <summary>A separate service provider (its own runner, as a second silo would have) on a database.</summary>
    protected ServiceProvider Build(string connectionString, int pageSize = 500, int partitions = 1, Action<IServiceCollection>? configure = null)
    {
        var services = new ServiceCollection();
        services.AddLogging(l => l.SetMinimumLevel(LogLevel.Warning));
        services.AddMetrics();
        services.AddSingleton<Microsoft.Extensions.Configuration.IConfiguration>(new Microsoft.Extensions.Configuration.ConfigurationBuilder().Build());
        services.AddPumpFleetEventStore(connectionString);
        services.AddPumpFleetReadModels();
        services.Configure<ProjectionOptions>(o =>
        {
            o.PageSize = pageSize;
            o.Partitions = partitions;
        });
        configure?.Invoke(services);
        var provider = services.BuildServiceProvider();
        _providers.Add(provider);
        return provider;
    }

    /// <summary>Catches every projection up to the end of the log with one runner.</summary>
    protected static async Task CatchUpAllAsync(ProjectionRunner runner, int partitions = 1)
    {
        // Tests in other databases run in parallel and their transactions hold the server-wide horizon back, so a
        // short page does not mean the end: repeat until every checkpoint is at the newest committed event.
        await Eventually.TrueAsync(async () =>
        {
            var done = true;
            foreach (var name in runner.Names)
            {
                for (var p = 0; p < partitions; p++)
                {
                    await runner.CatchUpAsync(name, p, partitions, TimeSpan.FromMinutes(5), Ct);
                    done &= await runner.IsCaughtUpAsync(name, p, partitions, Ct);
                }
            }

            return done;
        }, TimeSpan.FromSeconds(60), "every projection to reach the end of the log", TimeSpan.FromMilliseconds(20));
    }

    /// <summary>
    /// True when every projection's checkpoint in every log partition is at that partition's newest committed event
    /// (read-only: asks a runner of its own, which applies nothing).
    /// </summary>
    protected async Task<bool> AllCaughtUpAsync(string connectionString)
    {
        if (!_checkers.TryGetValue(connectionString, out var runner))
        {
            runner = Build(connectionString).GetRequiredService<ProjectionRunner>();
            _checkers[connectionString] = runner;
        }

        foreach (var name in runner.Names)
        {
            if (!await runner.IsCaughtUpAsync(name, 0, 1, Ct))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Every read-model row as JSON text, in key order, without bookkeeping timestamps. Daily volumes are rounded to
    /// 1e-9 mL: they are sums whose grouping depends on page boundaries, so the last bits of a double may differ.
    /// </summary>
    protected static async Task<string> DumpAsync(string connectionString)
    {
        var queries = new[]
        {
            "SELECT (to_jsonb(t) - 'updated_at' - 'state' - 'state_version')::text FROM pf_pump_status t ORDER BY serial",
            "SELECT to_jsonb(t)::text FROM pf_alarm_log t ORDER BY serial, seq",
            """
            SELECT jsonb_build_object('serial', serial, 'day', day, 'delivered', round(delivered_ml::numeric, 9), 'programmed', round(programmed_ml::numeric, 9),
                   'measured', round(measured_ml::numeric, 9), 'samples', measured_samples, 'end', round(reservoir_ml_end::numeric, 9), 'refills', refills)::text
              FROM pf_daily_flow ORDER BY serial, day
            """,
            "SELECT to_jsonb(t)::text FROM pf_anomalies t ORDER BY id",
            "SELECT to_jsonb(t)::text FROM pf_cohort_members t ORDER BY serial",
            "SELECT jsonb_build_object('m', model, 'f', firmware, 'l', lot, 'pumps', pumps, 'days', round(pump_days::numeric, 9), 'a', alarms, 'c', critical_alarms, 'an', anomalies)::text FROM pf_cohort_stats ORDER BY model, firmware, lot",
            "SELECT (to_jsonb(t) - 'updated_at')::text FROM pf_therapies t ORDER BY id",
            "SELECT to_jsonb(t)::text FROM pf_therapy_pumps t ORDER BY serial",
            "SELECT to_jsonb(t)::text FROM pf_refill_log t ORDER BY serial, seq",
            "SELECT to_jsonb(t)::text FROM pf_ingest_daily t ORDER BY day, log_partition",
        };
        var sb = new StringBuilder();
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync(Ct);
        foreach (var q in queries)
        {
            await using var cmd = new NpgsqlCommand(q, conn);
            await using var r = await cmd.ExecuteReaderAsync(Ct);
            while (await r.ReadAsync(Ct))
            {
                sb.AppendLine(r.GetString(0));
            }

            sb.AppendLine("--");
        }

        return sb.ToString();
    }

    protected static async Task<T> ScalarAsync<T>(string connectionString, string sql)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand(sql, conn);
        var v = await cmd.ExecuteScalarAsync(Ct);
        // sum(bigint) is numeric in PostgreSQL: convert plain numbers to what the test asks for.
        return v is IConvertible && typeof(T).IsPrimitive ? (T)Convert.ChangeType(v, typeof(T), System.Globalization.CultureInfo.InvariantCulture) : (T)v!;
    }

    protected static async Task ExecAsync(string connectionString, string sql)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync(Ct);
    }

    protected static FleetSeed Seed(int pumps = 12) => new(pumps, hours: 72, start: new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero));
}
