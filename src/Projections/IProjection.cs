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
    /// <param name="fromOwnCommit">The page is read from where this runner's own last commit left the log partition's
    /// checkpoint (issue 14, h14x). If the lock finds the checkpoint there (otherwise nothing of the page is applied),
    /// nobody has written the partition's rows since that commit: what the projection remembers of its own committed
    /// pages of this partition is what the rows hold. False: a first page, or one after a moved checkpoint or a restart.</param>
    PageLoad? Load(IReadOnlyList<StoredEvent> events, bool fromOwnCommit);

    /// <summary>
    /// Applies the events as <see cref="IProjection.ApplyAsync"/> does, with the rows <paramref name="loaded"/> read
    /// (null: read them itself), and executes <paramref name="tail"/>'s commands, in their order, after every write of the
    /// page and in the same batch as the last of them (alone when there is nothing to write), calling
    /// <see cref="PageTail.Sending"/> right before that batch's round trip.
    /// </summary>
    Task ApplyAsync(NpgsqlConnection conn, NpgsqlTransaction tx, IReadOnlyList<StoredEvent> events, PageLoad? loaded, PageTail tail, CancellationToken ct);
}

/// <summary>
/// The engine's statements that end a page (the checkpoint advance, the progress row and <c>COMMIT</c>), for a
/// <see cref="IBatchedPageProjection"/> to send as the last commands of its last batch of writes.
/// </summary>
public sealed class PageTail
{
    private readonly Action? _sending;

    /// <summary>The tail's statements, with a callback for the moment they are sent (null: nobody waits for it).</summary>
    public PageTail(IReadOnlyList<NpgsqlBatchCommand> commands, Action? sending = null)
    {
        Commands = commands;
        _sending = sending;
    }

    /// <summary>No tail: the engine commits the page itself after the projection's writes.</summary>
    public static PageTail None { get; } = new([]);

    /// <summary>The statements, in order; empty for <see cref="None"/>.</summary>
    public IReadOnlyList<NpgsqlBatchCommand> Commands { get; }

    /// <summary>
    /// Called by the projection right before the round trip that carries <see cref="Commands"/>, when all the page's
    /// work in this process is done: the engine may meanwhile go on to another log partition's page
    /// (<see cref="ProjectionOptions.PipelinedPages"/>). Calling it more than once, or not at all, is harmless.
    /// </summary>
    public void Sending() => _sending?.Invoke();
}

/// <summary>What a <see cref="IBatchedPageProjection"/> reads in the checkpoint lock's round trip, and what it read.</summary>
public abstract class PageLoad
{
    /// <summary>The statements, run in order after the lock.</summary>
    public abstract IReadOnlyList<NpgsqlBatchCommand> Commands { get; }

    /// <summary>Reads the statements' results (the reader is at the first of them that returns rows).</summary>
    public abstract Task ReadAsync(NpgsqlDataReader reader, CancellationToken ct);
}
