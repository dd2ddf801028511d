using System.Globalization;
using Npgsql;

namespace PumpFleet.LiveBench;

/// <summary>
/// Statement executions per statement text from <c>pg_stat_statements</c> (every database of the private server) and
/// committed transactions from <c>pg_stat_database</c>, read before and after a phase.
/// </summary>
internal static class StatementCounts
{
    private static readonly char[] Whitespace = ['\n', '\r', '\t', ' '];
    private static readonly string[] ReadModelTables = ["pf_pump_status", "pf_anomalies", "pf_alarm_log", "pf_projection_progress", "pf_cohort_"];

    public sealed record Snapshot(Dictionary<string, long> Calls, long Commits);

    public sealed record Phase(double StatementsPerSecond, double TransactionsPerSecond, Dictionary<string, double> PerStatement)
    {
        /// <summary>
        /// Statements reading the tables the API serves the live pages from (pumps, anomalies, alarms, the projection
        /// progress behind the summary), the reads a page's refresh causes; the projections' writes are not counted.
        /// </summary>
        public double ApiReadsPerSecond => PerStatement
            .Where(kv => kv.Key.TrimStart().StartsWith("SELECT", StringComparison.OrdinalIgnoreCase)
                         && !kv.Key.Contains("FOR UPDATE", StringComparison.OrdinalIgnoreCase)
                         && ReadModelTables.Any(t => kv.Key.Contains(t, StringComparison.Ordinal)))
            .Sum(kv => kv.Value);

        /// <summary>The statements whose rate grew most over <paramref name="baseline"/>, shortened for a table cell.</summary>
        public string TopBeyond(Phase baseline, int count) => string.Join("; ", PerStatement
            .Select(kv => (Text: kv.Key, Delta: kv.Value - baseline.PerStatement.GetValueOrDefault(kv.Key)))
            .Where(x => x.Delta >= 0.5)
            .OrderByDescending(x => x.Delta)
            .Take(count)
            .Select(x => string.Create(CultureInfo.InvariantCulture, $"`{Shorten(x.Text)}` +{x.Delta:N1}")));
    }

    public static async Task<Snapshot> ReadAsync(NpgsqlDataSource ds)
    {
        // PostgreSQL publishes backends' counters at most every second.
        await Task.Delay(TimeSpan.FromSeconds(1.1));
        var calls = new Dictionary<string, long>(StringComparer.Ordinal);
        await using (var cmd = ds.CreateCommand("SELECT query, sum(calls)::bigint FROM pg_stat_statements GROUP BY query"))
        await using (var reader = await cmd.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                calls[reader.GetString(0)] = reader.GetInt64(1);
            }
        }

        await using var commits = ds.CreateCommand("SELECT sum(xact_commit)::bigint FROM pg_stat_database");
        return new Snapshot(calls, (long)(await commits.ExecuteScalarAsync())!);
    }

    public static Phase Diff(Snapshot before, Snapshot after, double seconds)
    {
        var per = after.Calls.ToDictionary(kv => kv.Key, kv => (kv.Value - before.Calls.GetValueOrDefault(kv.Key)) / seconds, StringComparer.Ordinal);
        return new Phase(per.Values.Sum(), (after.Commits - before.Commits) / seconds, per);
    }

    private static string Shorten(string sql)
    {
        var one = string.Join(' ', sql.Split(Whitespace, StringSplitOptions.RemoveEmptyEntries)).Replace("|", "/", StringComparison.Ordinal);
        return one.Length <= 70 ? one : one[..70] + "…";
    }
}
