using System.Globalization;
using Npgsql;

namespace PumpFleet.LiveBench;

/// <summary>
/// Who holds the log's gap-safe horizon: the log readers read only below <c>pg_snapshot_xmin(pg_current_snapshot())</c>,
/// the oldest transaction id still running on the server, whoever runs it. Every 25 ms this samples the backend with
/// the oldest running transaction id (<c>pg_stat_activity.backend_xid</c>) and records its current statement (what it
/// runs now, not necessarily what took the xid) and how long its transaction has been open.
/// </summary>
internal sealed class HorizonSampler(NpgsqlDataSource ds)
{
    private readonly List<(string Statement, double AgeMs)> _samples = [];

    public async Task RunAsync(CancellationToken ct)
    {
        await using var cmd = ds.CreateCommand("""
            SELECT left(regexp_replace(coalesce(query, ''), '\s+', ' ', 'g'), 70), extract(epoch FROM clock_timestamp() - xact_start) * 1000
              FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
             ORDER BY age(backend_xid) DESC LIMIT 1
            """);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await using var r = await cmd.ExecuteReaderAsync(ct);
                if (await r.ReadAsync(ct))
                {
                    _samples.Add((r.GetString(0), r.IsDBNull(1) ? double.NaN : Convert.ToDouble(r.GetValue(1), CultureInfo.InvariantCulture)));
                }
                else
                {
                    _samples.Add(("(no transaction with an xid running)", 0));
                }

                await Task.Delay(25, ct);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    /// <summary>The statements most often found holding the horizon: share of samples, and the age of their transaction.</summary>
    public IEnumerable<string> Table(int top)
    {
        yield return $"Who holds the log's horizon ({_samples.Count} samples every 25 ms; the backend with the oldest running xid, its current statement):";
        yield return "| statement (first 70 characters) | share of samples | transaction age p50 ms | p99 ms |";
        yield return "|---|---:|---:|---:|";
        foreach (var g in _samples.GroupBy(s => s.Statement).OrderByDescending(g => g.Count()).Take(top))
        {
            var ages = g.Select(s => s.AgeMs).Where(a => !double.IsNaN(a)).Order().ToArray();
            yield return string.Create(CultureInfo.InvariantCulture,
                $"| `{g.Key.Replace("|", "\\|", StringComparison.Ordinal)}` | {100.0 * g.Count() / _samples.Count:F1} % | {Q(ages, 0.5):F0} | {Q(ages, 0.99):F0} |");
        }
    }

    private static double Q(double[] sorted, double q) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
}
