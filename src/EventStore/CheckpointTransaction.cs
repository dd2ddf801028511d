using System.Globalization;
using Npgsql;

namespace PumpFleet.EventStore;

/// <summary>
/// A transaction holding one checkpoint (<see cref="ICheckpointStore.LockAsync"/>), several named ones
/// (<see cref="ICheckpointStore.LockManyAsync"/>) or every checkpoint under a prefix
/// (<see cref="ICheckpointStore.LockPrefixAsync"/>). The consumer writes its own tables on <see cref="Connection"/>
/// within <see cref="Transaction"/>, moves the checkpoint, and commits; disposing without a commit rolls back.
/// </summary>
public sealed class CheckpointTransaction : IAsyncDisposable
{
    private readonly string? _name;
    private readonly string? _prefix;

    internal CheckpointTransaction(NpgsqlConnection connection, NpgsqlTransaction transaction, string? name, string? prefix, GlobalCheckpoint position)
    {
        Connection = connection;
        Transaction = transaction;
        _name = name;
        _prefix = prefix;
        Position = position;
        Positions = name is null ? new Dictionary<string, GlobalCheckpoint>(StringComparer.Ordinal) : new Dictionary<string, GlobalCheckpoint>(StringComparer.Ordinal) { [name] = position };
    }

    internal CheckpointTransaction(NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyDictionary<string, GlobalCheckpoint> positions)
    {
        Connection = connection;
        Transaction = transaction;
        Positions = positions;
        Position = GlobalCheckpoint.Start;
    }

    /// <summary>Each held named checkpoint's newest committed position (one entry for a single lock; none for a prefix lock).</summary>
    public IReadOnlyDictionary<string, GlobalCheckpoint> Positions { get; }

    /// <summary>The connection the transaction runs on.</summary>
    public NpgsqlConnection Connection { get; }

    /// <summary>The transaction that holds the checkpoint rows.</summary>
    public NpgsqlTransaction Transaction { get; }

    /// <summary>The held checkpoint's newest committed position (<see cref="GlobalCheckpoint.Start"/> for a prefix lock).</summary>
    public GlobalCheckpoint Position { get; }

    /// <summary>Moves the held checkpoint to <paramref name="next"/> (single-checkpoint locks only).</summary>
    public Task AdvanceAsync(GlobalCheckpoint next, CancellationToken ct = default) => AdvanceAsync(next, [], ct);

    /// <summary>
    /// Moves the held checkpoint to <paramref name="next"/> and runs the consumer's <paramref name="alongside"/>
    /// statements after it in the same round trip (single-checkpoint locks only).
    /// </summary>
    public async Task AdvanceAsync(GlobalCheckpoint next, IReadOnlyList<NpgsqlBatchCommand> alongside, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(alongside);
        if (_name is null)
        {
            throw new InvalidOperationException("A prefix lock has no single checkpoint to advance; use ResetAsync.");
        }

        await using var batch = new NpgsqlBatch(Connection, Transaction);
        var advance = AdvanceCommand(next);
        batch.BatchCommands.Add(advance);
        foreach (var cmd in alongside)
        {
            batch.BatchCommands.Add(cmd);
        }

        await batch.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// The statement that moves the held checkpoint to <paramref name="next"/>, for a consumer that sends it in its own
    /// batch (with its writes and a <c>COMMIT</c>, one round trip for the page; single-checkpoint locks only).
    /// </summary>
    public NpgsqlBatchCommand AdvanceCommand(GlobalCheckpoint next)
    {
        if (_name is null)
        {
            throw new InvalidOperationException("A prefix lock has no single checkpoint to advance; use ResetAsync.");
        }

        var advance = new NpgsqlBatchCommand(
            "UPDATE pf_checkpoints SET transaction_id = $2::text::xid8, global_position = $3, updated_at = now() WHERE name = $1");
        advance.Parameters.Add(new() { Value = _name });
        advance.Parameters.Add(new() { Value = next.TransactionId.ToString(CultureInfo.InvariantCulture) });
        advance.Parameters.Add(new() { Value = next.Position });
        return advance;
    }

    /// <summary>
    /// One statement that moves each of <paramref name="moves"/>' checkpoints, all of them held by this transaction
    /// (<see cref="ICheckpointStore.LockManyAsync"/>), for a consumer that sends it in its own batch. Its
    /// <c>RecordsAffected</c> after the batch is the number of rows it moved.
    /// </summary>
    public NpgsqlBatchCommand AdvanceManyCommand(IReadOnlyList<(string Name, GlobalCheckpoint Next)> moves)
    {
        ArgumentNullException.ThrowIfNull(moves);
        if (moves.Any(m => !Positions.ContainsKey(m.Name)))
        {
            throw new InvalidOperationException("Only checkpoints held by this transaction can be advanced.");
        }

        var advance = new NpgsqlBatchCommand("""
            UPDATE pf_checkpoints AS c SET transaction_id = u.tx::xid8, global_position = u.pos, updated_at = now()
            FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(name, tx, pos) WHERE c.name = u.name
            """);
        advance.Parameters.Add(new() { Value = moves.Select(m => m.Name).ToArray() });
        advance.Parameters.Add(new() { Value = moves.Select(m => m.Next.TransactionId.ToString(CultureInfo.InvariantCulture)).ToArray() });
        advance.Parameters.Add(new() { Value = moves.Select(m => m.Next.Position).ToArray() });
        return advance;
    }

    /// <summary>Puts every held checkpoint back to the start of the log.</summary>
    public async Task ResetAsync(CancellationToken ct = default)
    {
        if (_name is null && _prefix is null)
        {
            throw new InvalidOperationException("ResetAsync is for a single or a prefix lock; a lock of several checkpoints moves them with AdvanceManyCommand.");
        }

        await using var cmd = _name is not null
            ? new NpgsqlCommand("UPDATE pf_checkpoints SET transaction_id = '0'::xid8, global_position = 0, updated_at = now() WHERE name = $1", Connection, Transaction)
            : new NpgsqlCommand("UPDATE pf_checkpoints SET transaction_id = '0'::xid8, global_position = 0, updated_at = now() WHERE starts_with(name, $1)", Connection, Transaction);
        cmd.Parameters.Add(new() { Value = _name ?? _prefix! });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Commits the consumer's writes and the checkpoint together.</summary>
    public Task CommitAsync(CancellationToken ct = default) => Transaction.CommitAsync(ct);

    /// <summary>Abandons everything written in the transaction.</summary>
    public Task RollbackAsync(CancellationToken ct = default) => Transaction.RollbackAsync(ct);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await Transaction.DisposeAsync();
        await Connection.DisposeAsync();
    }
}
