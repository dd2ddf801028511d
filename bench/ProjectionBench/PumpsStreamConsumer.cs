using Npgsql;
using Orleans.Streams;
using Orleans.Streams.Core;
using PumpFleet.EventStore;
using PumpFleet.Projections;
using PumpFleet.ReadModels;
using PumpFleet.Streaming;

namespace PumpFleet.ProjectionBench;

/// <summary>
/// The stream-consumer design of the pumps read model, for the benchmark: one grain per partition stream of
/// <c>pumpfleet-log</c> (implicit subscription, so no delivery is missed before a subscribe call), buffering what it is
/// delivered and applying it in one transaction per batch (500 events, or whatever arrived within 100 ms). There is no
/// checkpoint of its own: the provider checkpoints the queue, and redeliveries are dropped by the projection's
/// per-pump stream version, in the same transaction as the writes (docs/projections.md).
/// </summary>
[ImplicitStreamSubscription(LogStreams.PartitionNamespace)]
public sealed class PumpsStreamConsumer(NpgsqlDataSource dataSource, IEnumerable<IProjection> projections)
    : Grain, IPumpsStreamConsumer, IStreamSubscriptionObserver, IAsyncObserver<CommittedEvent>
{
    private const int BatchSize = 500;
    private static long s_applied;
    private readonly IProjection _pumps = projections.Single(p => p.Name == PumpProjection.ProjectionName);
    private readonly List<StoredEvent> _buffer = new(BatchSize);

    /// <summary>Events applied by every consumer since <see cref="Reset"/>.</summary>
    public static long Applied => Interlocked.Read(ref s_applied);

    /// <summary>Starts a new count.</summary>
    public static void Reset() => Interlocked.Exchange(ref s_applied, 0);

    /// <inheritdoc />
    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        this.RegisterGrainTimer(static (self, ct) => self.FlushAsync(ct), this, new GrainTimerCreationOptions
        {
            DueTime = TimeSpan.FromMilliseconds(100),
            Period = TimeSpan.FromMilliseconds(100),
            Interleave = false,
            KeepAlive = true,
        });
        return base.OnActivateAsync(cancellationToken);
    }

    /// <inheritdoc />
    public async Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory) =>
        await handleFactory.Create<CommittedEvent>().ResumeAsync(this);

    /// <inheritdoc />
    public async Task OnNextAsync(CommittedEvent item, StreamSequenceToken? token = null)
    {
        _buffer.Add(new StoredEvent(item.GlobalPosition, item.TransactionId, item.StreamId, item.Version, item.EventId, item.Type, item.Seq,
            item.DeviceTime, item.ReceivedAt, item.ClockSuspect, item.Data, item.Metadata));
        if (_buffer.Count >= BatchSize)
        {
            await FlushAsync(CancellationToken.None);
        }
    }

    /// <inheritdoc />
    public Task OnCompletedAsync() => Task.CompletedTask;

    /// <inheritdoc />
    public Task OnErrorAsync(Exception ex) => Task.CompletedTask;

    private async Task FlushAsync(CancellationToken ct)
    {
        if (_buffer.Count == 0)
        {
            return;
        }

        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await _pumps.ApplyAsync(conn, tx, _buffer, ct);
        await tx.CommitAsync(ct);
        Interlocked.Add(ref s_applied, _buffer.Count);
        _buffer.Clear();
    }
}

/// <summary>The consumer grain's interface (a grain needs one; nothing calls it).</summary>
[Alias("pumpfleet.bench.pumps-stream-consumer")]
public interface IPumpsStreamConsumer : IGrainWithStringKey;
