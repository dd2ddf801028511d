using Npgsql;
using PumpFleet.EventStore;

namespace PumpFleet.Projections;

/// <summary>
/// A read model kept from the global event log. <see cref="ApplyAsync"/> runs inside the page's transaction, so its
/// writes commit together with the checkpoint or not at all.
/// </summary>
public interface IProjection
{
    /// <summary>Stable name (checkpoint key, rebuild command, metric tag).</summary>
    string Name { get; }

    /// <summary>The tables this projection owns; a rebuild empties them.</summary>
    IReadOnlyList<string> Tables { get; }

    /// <summary>Applies the events (already filtered to the partition, in log order) within <paramref name="tx"/>.</summary>
    Task ApplyAsync(NpgsqlConnection conn, NpgsqlTransaction tx, IReadOnlyList<StoredEvent> events, CancellationToken ct);
}
