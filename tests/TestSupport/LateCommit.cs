using Npgsql;

namespace PumpFleet.TestSupport;

/// <summary>
/// A transaction that has inserted one event (a 'status' event of <c>version</c> 1, or the given version) and not yet
/// committed: it holds a global position below everything appended after it, so readers must stop below it until it
/// commits (the gap-safe horizon). Disposing without <see cref="CommitAsync"/> rolls it back.
/// </summary>
public sealed class LateCommit : IAsyncDisposable
{
    private readonly NpgsqlConnection _conn;
    private readonly NpgsqlTransaction _tx;

    private LateCommit(NpgsqlConnection conn, NpgsqlTransaction tx) => (_conn, _tx) = (conn, tx);

    /// <summary>Opens a connection and a transaction and inserts the event of <paramref name="streamId"/> in it.</summary>
    public static async Task<LateCommit> BeginAsync(NpgsqlDataSource dataSource, string streamId, CancellationToken ct, long version = 1)
    {
        var conn = await dataSource.OpenConnectionAsync(ct);
        try
        {
            var tx = await conn.BeginTransactionAsync(ct);
            await using (var cmd = new NpgsqlCommand(
                "INSERT INTO pf_events (stream_id, version, event_id, event_type, received_at, data) VALUES ($1, $2, gen_random_uuid(), 'status', now(), '{}')",
                conn, tx))
            {
                cmd.Parameters.Add(new() { Value = streamId });
                cmd.Parameters.Add(new() { Value = version });
                await cmd.ExecuteNonQueryAsync(ct);
            }

            return new LateCommit(conn, tx);
        }
        catch
        {
            await conn.DisposeAsync();
            throw;
        }
    }

    /// <summary>Commits the late event.</summary>
    public Task CommitAsync(CancellationToken ct) => _tx.CommitAsync(ct);

    public async ValueTask DisposeAsync()
    {
        await _tx.DisposeAsync();
        await _conn.DisposeAsync();
    }
}
