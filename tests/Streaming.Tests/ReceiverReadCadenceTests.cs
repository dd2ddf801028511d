using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Log;
using PumpFleet.TestSupport;

namespace PumpFleet.Streaming.Tests;

/// <summary>
/// The receiver's read cadence (<see cref="LogStreamOptions.MinReadInterval"/>): a notification after a quiet spell is
/// read at once; notifications within the floor after a read are coalesced into one read when it has passed; a full
/// page reads on without waiting. Real PostgreSQL and LISTEN; the receiver's clock is a fake one. Alone on the
/// assembly's server: the gap-safe horizon is server-wide, and another test's open transaction would shorten a read.
/// </summary>
[Collection(nameof(ReceiverReadCadenceTests))]
[CollectionDefinition(nameof(ReceiverReadCadenceTests), DisableParallelization = true)]
public sealed class ReceiverReadCadenceTests(PostgresFixture pg)
{
    private const int Partition = 7;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task NotificationsWithinTheFloor_AreReadTogether_AfterAQuietSpell_AtOnce()
    {
        await using var h = await Harness.StartAsync(pg, TimeSpan.FromMilliseconds(100), pageSize: 50);
        var id = StreamCluster.NewStreamIdIn("RC", Partition);

        // Quiet for a while, then one append: read at the next turn.
        h.Time.Advance(TimeSpan.FromSeconds(5));
        await h.AppendHeardAsync(id, 0, 2);
        Assert.Equal(2, (await h.TurnAsync()).Count);
        Assert.Equal(1, h.Reads);

        // Two more appends heard 10 ms after that read: nothing is read until the floor has passed, then both at once.
        await h.AppendHeardAsync(id, 2, 3);
        await h.AppendHeardAsync(id, 5, 4);
        h.Time.Advance(TimeSpan.FromMilliseconds(10));
        Assert.Empty(await h.TurnAsync());
        h.Time.Advance(TimeSpan.FromMilliseconds(50));
        Assert.Empty(await h.TurnAsync());
        Assert.Equal(1, h.Reads);
        h.Time.Advance(TimeSpan.FromMilliseconds(40));
        Assert.Equal(7, (await h.TurnAsync()).Count);
        Assert.Equal(2, h.Reads);
    }

    [Fact]
    public async Task AFullPage_IsFollowedAtTheNextTurn_WithoutTheFloor()
    {
        await using var h = await Harness.StartAsync(pg, TimeSpan.FromMilliseconds(100), pageSize: 5);
        var id = StreamCluster.NewStreamIdIn("RF", Partition);
        h.Time.Advance(TimeSpan.FromSeconds(5));
        await h.AppendHeardAsync(id, 0, 12);

        // Pages of 5: catching up reads back to back (same fake instant), the short last page ends it.
        Assert.Equal(5, (await h.TurnAsync()).Count);
        Assert.Equal(5, (await h.TurnAsync()).Count);
        Assert.Equal(2, (await h.TurnAsync()).Count);
        Assert.Equal(3, h.Reads);
        Assert.Empty(await h.TurnAsync());
        Assert.Equal(3, h.Reads);
    }

    [Fact]
    public async Task WithoutAFloor_EachNotifiedTurnReads()
    {
        await using var h = await Harness.StartAsync(pg, TimeSpan.Zero, pageSize: 50);
        var id = StreamCluster.NewStreamIdIn("RZ", Partition);
        h.Time.Advance(TimeSpan.FromSeconds(5));
        await h.AppendHeardAsync(id, 0, 1);
        Assert.Single(await h.TurnAsync());
        await h.AppendHeardAsync(id, 1, 1);
        h.Time.Advance(TimeSpan.FromMilliseconds(10));
        Assert.Single(await h.TurnAsync());
        Assert.Equal(2, h.Reads);
    }

    [Fact]
    public async Task BelowTheRate_EachNotificationIsReadAtOnce_AboveIt_TheyAreCoalesced()
    {
        await using var h = await Harness.StartAsync(pg, TimeSpan.FromMilliseconds(100), pageSize: 500, coalesceAbove: 100);
        var id = StreamCluster.NewStreamIdIn("RR", Partition);
        h.Time.Advance(TimeSpan.FromSeconds(5));

        // Quiet (a few events a second): a notification 10 ms after a read is read at once, as without a floor.
        await h.AppendHeardAsync(id, 0, 2);
        Assert.Equal(2, (await h.TurnAsync()).Count);
        await h.AppendHeardAsync(id, 2, 1);
        h.Time.Advance(TimeSpan.FromMilliseconds(10));
        Assert.Single(await h.TurnAsync());
        Assert.Equal(2, h.Reads);

        // A busy second (150 events), measured when the next read closes it.
        await h.AppendHeardAsync(id, 3, 150);
        h.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(150, (await h.TurnAsync()).Count);
        await h.AppendHeardAsync(id, 153, 1);
        h.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.Single(await h.TurnAsync());

        // Busy: within the floor the notification waits, and is read when the floor has passed.
        await h.AppendHeardAsync(id, 154, 1);
        h.Time.Advance(TimeSpan.FromMilliseconds(10));
        Assert.Empty(await h.TurnAsync());
        h.Time.Advance(TimeSpan.FromMilliseconds(90));
        Assert.Single(await h.TurnAsync());
        Assert.Equal(5, h.Reads);
    }

    private sealed class Harness : IAsyncDisposable
    {
        private readonly ServiceProvider _services;
        private readonly CountingReader _reader;
        private readonly LogQueueReceiver _receiver;
        private readonly LogNotificationListener _listener;
        private readonly IEventStore _store;
        private readonly int _pageSize;

        private Harness(ServiceProvider services, CountingReader reader, LogQueueReceiver receiver, LogNotificationListener listener, FakeTimeProvider time, int pageSize)
        {
            _pageSize = pageSize;
            _services = services;
            _reader = reader;
            _receiver = receiver;
            _listener = listener;
            _store = services.GetRequiredService<IEventStore>();
            Time = time;
        }

        public FakeTimeProvider Time { get; }

        public int Reads => _reader.Reads;

        public static async Task<Harness> StartAsync(PostgresFixture pg, TimeSpan floor, int pageSize, int coalesceAbove = 0)
        {
            var cs = await pg.CreateDatabaseAsync("rc");
            var services = new ServiceCollection().AddLogging().AddPumpFleetEventStore(cs).BuildServiceProvider();
            var listener = services.GetRequiredService<LogNotificationListener>();
            listener.EnsureStarted();
            await Eventually.TrueAsync(() => Task.FromResult(listener.IsListening), TimeSpan.FromSeconds(30), "LISTEN is up");
            var reader = new CountingReader(services.GetRequiredService<ILogPartitionReader>());
            var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-11-30T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
            var options = new LogStreamOptions
            {
                MinReadInterval = floor, CoalesceAboveEventsPerSecond = coalesceAbove, PageSize = pageSize, PollInterval = TimeSpan.FromMinutes(5),
            };
            var receiver = new LogQueueReceiver(Partition, $"stream:rc:{Partition}of16", reader, services.GetRequiredService<ICheckpointStore>(),
                listener, options, time, new LogStreamInstruments(services.GetRequiredService<IMeterFactory>()), NullLogger.Instance);
            await receiver.Initialize(TimeSpan.FromSeconds(30));
            // The first turn reads once (nothing is known yet); from then on only notifications, full pages or the poll read.
            Assert.Empty(await receiver.GetQueueMessagesAsync(2 * pageSize, Ct));
            reader.Reads = 0;
            return new Harness(services, reader, receiver, listener, time, pageSize);
        }

        public async Task AppendHeardAsync(string id, long expected, int count)
        {
            var before = _listener.CountOf(Partition);
            await StreamCluster.AppendAsync(_store, id, expected, count);
            await Eventually.TrueAsync(() => Task.FromResult(_listener.CountOf(Partition) > before), TimeSpan.FromSeconds(30), "the append heard");
        }

        // One agent turn (the agent asks for twice the page: an event is delivered on up to two streams here); the events
        // of the partition stream's container (one per page).
        public async Task<IReadOnlyList<CommittedEvent>> TurnAsync()
        {
            var batches = await _receiver.GetQueueMessagesAsync(2 * _pageSize, Ct);
            return batches.Cast<LogBatchContainer>().Where(b => b.StreamId == LogStreams.ForPartition(Partition)).SelectMany(b => b.Events).ToList();
        }

        public async ValueTask DisposeAsync()
        {
            await _services.DisposeAsync();
        }
    }

    private sealed class CountingReader(ILogPartitionReader inner) : ILogPartitionReader
    {
        public int Reads { get; set; }

        public Task<GlobalPage> ReadPartitionAsync(int partition, GlobalCheckpoint after, int limit, CancellationToken ct = default)
        {
            Reads++;
            return inner.ReadPartitionAsync(partition, after, limit, ct);
        }

        // The receiver's own call (the live path: never an earlier read's end, EventStore:TailCache).
        public Task<GlobalPage> ReadPartitionLatestAsync(int partition, GlobalCheckpoint after, int limit, CancellationToken ct = default)
        {
            Reads++;
            return inner.ReadPartitionLatestAsync(partition, after, limit, ct);
        }

        public Task<GlobalCheckpoint?> ReadPartitionHeadAsync(int partition, CancellationToken ct = default) => inner.ReadPartitionHeadAsync(partition, ct);

        public Task<long> CountPartitionAfterAsync(int partition, GlobalCheckpoint after, long cap, CancellationToken ct = default) =>
            inner.CountPartitionAfterAsync(partition, after, cap, ct);

        public Task<GlobalCheckpoint> AdvanceCheckpointAsync(string name, GlobalCheckpoint checkpoint, CancellationToken ct = default) =>
            inner.AdvanceCheckpointAsync(name, checkpoint, ct);
    }
}
