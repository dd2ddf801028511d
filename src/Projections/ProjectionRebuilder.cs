using Microsoft.Extensions.Logging;
using Npgsql;

namespace PumpFleet.Projections;

/// <summary>
/// Rebuilds a projection from the start of the log while the platform runs: one transaction locks the projection's
/// checkpoint rows (waiting for a page in flight to commit), empties its tables and puts every partition's checkpoint
/// back to the start. A worker whose page read the old position then finds its checkpoint moved and starts over, so
/// nothing from before the rebuild leaks into the new read model. Works from any process that can reach the database.
/// </summary>
public sealed partial class ProjectionRebuilder(NpgsqlDataSource dataSource, IEnumerable<IProjection> projections, ILogger<ProjectionRebuilder> logger)
{
    private readonly Dictionary<string, IProjection> _projections = projections.ToDictionary(p => p.Name, StringComparer.Ordinal);

    /// <summary>Names of the projections that can be rebuilt.</summary>
    public IReadOnlyCollection<string> Names => _projections.Keys;

    /// <summary>True when a projection with that name exists.</summary>
    public bool Exists(string name) => _projections.ContainsKey(name);

    /// <summary>Rebuilds one projection (its grains catch up again on their next poll).</summary>
    public async Task RebuildAsync(string name, CancellationToken ct = default)
    {
        if (!_projections.TryGetValue(name, out var projection))
        {
            throw new KeyNotFoundException($"No projection '{name}'. Known: {string.Join(", ", _projections.Keys)}.");
        }

        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        var prefix = $"projection:{name}:";
        await using (var lockCmd = new NpgsqlCommand("SELECT name FROM pf_checkpoints WHERE starts_with(name, $1) FOR UPDATE", conn, tx))
        {
            lockCmd.Parameters.Add(new() { Value = prefix });
            await using var r = await lockCmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
            }
        }

        foreach (var table in projection.Tables)
        {
            // Table names come from code, never from the request.
            await using var del = new NpgsqlCommand($"DELETE FROM {table}", conn, tx);
            await del.ExecuteNonQueryAsync(ct);
        }

        await using (var reset = new NpgsqlCommand("""
            UPDATE pf_checkpoints SET transaction_id = '0'::xid8, global_position = 0, updated_at = now() WHERE starts_with(name, @prefix);
            DELETE FROM pf_projection_progress WHERE projection = @name;
            """, conn, tx))
        {
            reset.Parameters.AddWithValue("prefix", prefix);
            reset.Parameters.AddWithValue("name", name);
            await reset.ExecuteNonQueryAsync(ct);
        }

        await tx.CommitAsync(ct);
        LogRebuilt(name);
    }

    /// <summary>Rebuilds every projection.</summary>
    public async Task RebuildAllAsync(CancellationToken ct = default)
    {
        foreach (var name in _projections.Keys)
        {
            await RebuildAsync(name, ct);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Projection {Name} reset for a rebuild from the start of the log")]
    private partial void LogRebuilt(string name);
}
