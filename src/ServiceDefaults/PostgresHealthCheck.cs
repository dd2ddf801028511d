using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace PumpFleet.ServiceDefaults;

/// <summary>Ready when PostgreSQL answers a trivial query within two seconds (healthy when the process uses no database).</summary>
public sealed class PostgresHealthCheck(IServiceProvider services) : IHealthCheck
{
    /// <inheritdoc />
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var ds = services.GetService<NpgsqlDataSource>();
        if (ds is null)
        {
            return HealthCheckResult.Healthy("This process has no database.");
        }

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(TimeSpan.FromSeconds(2));
        try
        {
            await using var cmd = ds.CreateCommand("SELECT 1");
            await cmd.ExecuteScalarAsync(cts.Token);
            return HealthCheckResult.Healthy();
        }
        catch (Exception e) when (e is NpgsqlException or OperationCanceledException or TimeoutException)
        {
            return HealthCheckResult.Unhealthy("PostgreSQL is not reachable: " + e.Message);
        }
    }
}
