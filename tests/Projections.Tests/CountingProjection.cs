using Npgsql;
using PumpFleet.EventStore;

namespace PumpFleet.Projections.Tests;

/// <summary>
/// A test projection that records each applied event in <paramref name="table"/> (event_id, stream_id, version, times:
/// how many times it was applied) and throws on the events in <see cref="Poisoned"/>: what the engine's exactly-once,
/// ordering and parking tests count with.
/// </summary>
internal sealed class CountingProjection(string name, string table) : IProjection
{
    private int _failures;

    /// <summary>Events whose apply throws (the projection's fault, as a bug in a real one would).</summary>
    public HashSet<Guid> Poisoned { get; } = [];

    /// <summary>How many times an apply threw.</summary>
    public int Failures => Volatile.Read(ref _failures);

    public string Name => name;

    public IReadOnlyList<string> Tables { get; } = [table];

    public async Task ApplyAsync(NpgsqlConnection conn, NpgsqlTransaction tx, IReadOnlyList<StoredEvent> events, CancellationToken ct)
    {
        foreach (var e in events)
        {
            if (Poisoned.Contains(e.EventId))
            {
                Interlocked.Increment(ref _failures);
                throw new InvalidOperationException($"{e.StreamId} v{e.Version} poisoned on purpose");
            }

            await using var cmd = new NpgsqlCommand($"""
                INSERT INTO {table} (event_id, stream_id, version, times) VALUES ($1, $2, $3, 1)
                ON CONFLICT (event_id) DO UPDATE SET times = {table}.times + 1
                """, conn, tx);
            cmd.Parameters.Add(new() { Value = e.EventId });
            cmd.Parameters.Add(new() { Value = e.StreamId });
            cmd.Parameters.Add(new() { Value = e.Version });
            await cmd.ExecuteNonQueryAsync(ct);
        }
    }
}
