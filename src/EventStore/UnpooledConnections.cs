using Npgsql;

namespace PumpFleet.EventStore;

/// <summary>
/// Connections of their own for work that keeps state in its PostgreSQL session (a <c>LISTEN</c>): never taken from
/// nor given back to the platform's pool, so closing one ends its session and whatever the session kept ends with it.
/// The pooled data source hands its connections on without Npgsql's reset (<see cref="EventStoreDataSource.Build"/>),
/// so a <c>LISTEN</c> connection returned to it, after a failure or at shutdown, would go on receiving a notification
/// per commit in another borrower's hands, and the server's notification queue could not move past it.
/// Same connection string and UTC sessions as the pooled source (<see cref="EventStoreDataSource.BuildUnpooled"/>).
/// </summary>
public sealed class UnpooledConnections : IAsyncDisposable
{
    private readonly NpgsqlDataSource _dataSource;

    /// <summary>Connections to the database of <paramref name="connectionString"/>, each a new session.</summary>
    public UnpooledConnections(string connectionString) => _dataSource = EventStoreDataSource.BuildUnpooled(connectionString);

    /// <summary>Opens a new physical connection; disposing it closes the session.</summary>
    public ValueTask<NpgsqlConnection> OpenAsync(CancellationToken ct) => _dataSource.OpenConnectionAsync(ct);

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _dataSource.DisposeAsync();
}
