using Microsoft.Extensions.Logging;
using Npgsql;
using PumpFleet.EventStore;

namespace PumpFleet.Projections;

/// <summary>
/// Rebuilds a projection from the start of the log while the platform runs: one transaction locks the projection's
/// checkpoint rows (waiting for a page in flight to commit), empties its tables and puts every partition's checkpoint
/// back to the start. A worker whose page read the old position then finds its checkpoint moved and starts over, so
/// nothing from before the rebuild leaks into the new read model. Works from any process that can reach the database.
/// </summary>
public sealed partial class ProjectionRebuilder(ICheckpointStore checkpoints, IEnumerable<IProjection> projections, ILogger<ProjectionRebuilder> logger)
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

        // The event store holds every partition's checkpoint (waiting for a page in flight to commit) until the commit.
        await using var held = await checkpoints.LockPrefixAsync($"projection:{name}:", ct);
        foreach (var table in projection.Tables)
        {
            // Table names come from code, never from the request.
            await using var del = new NpgsqlCommand($"DELETE FROM {table}", held.Connection, held.Transaction);
            await del.ExecuteNonQueryAsync(ct);
        }

        await held.ResetAsync(ct);
        await ProjectionProgressStore.ForgetAsync(held.Connection, held.Transaction, name, ct);
        await ParkedEventStore.ForgetAsync(held.Connection, held.Transaction, name, ct);
        await held.CommitAsync(ct);
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
