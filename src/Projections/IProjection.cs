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
/// A projection whose page takes fewer round trips (issue 14, h14r): it reads the page's stored rows in the checkpoint
/// lock's round trip (<see cref="Load"/>, <see cref="ProjectionOptions.LoadWithLock"/>) and sends the page's tail, the
/// engine's statements that end the page (the checkpoint advance, the progress row and <c>COMMIT</c>), as the last
/// commands of its own last batch of writes (<see cref="ProjectionOptions.CommitWithWrites"/>). Such a projection must
/// not act on its batch's results after that round trip (the transaction has committed): a check of what its
/// statements found has to fail inside the batch (an error there skips the tail, and the page rolls back).
/// </summary>
public interface IBatchedPageProjection : IProjection
{
    /// <summary>
    /// The statements to run right after the checkpoint lock, in its round trip, and the reading of their results; null
    /// when the page needs none. They run before the engine has checked the checkpoint: a page whose checkpoint moved
    /// rolls back and the load is dropped unused.
    /// </summary>
    /// <param name="events">The page's events.</param>
    PageLoad? Load(IReadOnlyList<StoredEvent> events);

    /// <summary>
    /// Applies the events as <see cref="IProjection.ApplyAsync"/> does, with the rows <paramref name="loaded"/> read
    /// (null: read them itself), and executes <paramref name="tail"/>'s commands, in their order, after every write of the
    /// page and in the same batch as the last of them (alone when there is nothing to write).
    /// </summary>
    Task ApplyAsync(NpgsqlConnection conn, NpgsqlTransaction tx, IReadOnlyList<StoredEvent> events, PageLoad? loaded, PageTail tail, CancellationToken ct);
}

/// <summary>
/// The engine's statements that end a page (the checkpoint advance, the progress row and <c>COMMIT</c>), for a
/// <see cref="IBatchedPageProjection"/> to send as the last commands of its last batch of writes.
/// </summary>
public sealed class PageTail
{
    /// <summary>The tail's statements.</summary>
    public PageTail(IReadOnlyList<NpgsqlBatchCommand> commands) => Commands = commands;

    /// <summary>No tail: the engine commits the page itself after the projection's writes.</summary>
    public static PageTail None { get; } = new([]);

    /// <summary>The statements, in order; empty for <see cref="None"/>.</summary>
    public IReadOnlyList<NpgsqlBatchCommand> Commands { get; }
}

/// <summary>What a <see cref="IBatchedPageProjection"/> reads in the checkpoint lock's round trip, and what it read.</summary>
public abstract class PageLoad
{
    /// <summary>The statements, run in order after the lock.</summary>
    public abstract IReadOnlyList<NpgsqlBatchCommand> Commands { get; }

    /// <summary>Reads the statements' results (the reader is at the first of them that returns rows).</summary>
    public abstract Task ReadAsync(NpgsqlDataReader reader, CancellationToken ct);
}
