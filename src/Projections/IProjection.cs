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

/// <summary>
/// A projection that sends the page's tail, the engine's statements that end the page (the checkpoint advance, the
/// progress row and <c>COMMIT</c>), as the last commands of its own last batch of writes, so a page's writes, its
/// checkpoint and its commit take one round trip (issue 14, <see cref="ProjectionOptions.CommitWithWrites"/>). Such a
/// projection must not act on its batch's results after that round trip (the transaction has committed): a check of
/// what its statements found has to fail inside the batch (an error there skips the tail, and the page rolls back).
/// </summary>
public interface IPageTailProjection : IProjection
{
    /// <summary>
    /// Applies the events as <see cref="IProjection.ApplyAsync"/> does and executes <paramref name="tail"/>, in its order,
    /// after every write of the page and in the same batch as the last of them (alone when there is nothing to write).
    /// </summary>
    Task ApplyAsync(NpgsqlConnection conn, NpgsqlTransaction tx, IReadOnlyList<StoredEvent> events, IReadOnlyList<NpgsqlBatchCommand> tail, CancellationToken ct);
}
