using Npgsql;
using PumpFleet.EventStore;
using PumpFleet.TestSupport;

namespace PumpFleet.EventStore.Tests;

public abstract class EventStoreTestBase(PostgresFixture pg) : IAsyncLifetime
{
    protected PostgresFixture Pg { get; } = pg;
    protected NpgsqlDataSource DataSource { get; private set; } = null!;
    protected NpgsqlEventStore Store { get; private set; } = null!;
    protected string ConnectionString { get; private set; } = "";

    public async ValueTask InitializeAsync()
    {
        ConnectionString = await Pg.CreateDatabaseAsync("es");
        DataSource = NpgsqlDataSource.Create(ConnectionString);
        Store = new NpgsqlEventStore(DataSource);
    }

    public async ValueTask DisposeAsync() => await DataSource.DisposeAsync();

    protected static EventToAppend Evt(long? seq = null, string type = "status", string data = "{}", Guid? id = null) =>
        new(id ?? Guid.NewGuid(), type, data, seq, seq is null ? null : DateTimeOffset.UnixEpoch.AddDays(20000).AddMinutes(seq.Value),
            DateTimeOffset.UtcNow);

    protected static string NewStream() => "P" + Guid.NewGuid().ToString("N")[..10];

    protected async Task<List<StoredEvent>> ReadAsync(string stream, long after = 0)
    {
        var list = new List<StoredEvent>();
        await foreach (var e in Store.ReadStreamAsync(stream, after, TestContext.Current.CancellationToken))
        {
            list.Add(e);
        }

        return list;
    }
}
