using System.Collections.Concurrent;
using JasperFx;
using JasperFx.Events;
using JasperFx.Events.Daemon;
using JasperFx.Events.Projections;
using Marten;
using Marten.Services;
using Marten.Subscriptions;
using Npgsql;

namespace PumpFleet.EventStoreComparison;

/// <summary>
/// How the async daemon decides to skip a sequence gap. Marten 9.58's defaults already are its safest documented
/// settings (transaction evidence on, <c>SkipStaleGapsDespiteLiveTransactionsAfter</c> null: never knowingly skip a
/// live appender); a longer <c>StaleSequenceThreshold</c> would only hold dead gaps longer.
/// </summary>
public enum GapPolicy
{
    /// <summary>Marten 9.58 defaults: transaction evidence consulted before skipping a gap stale for 3 s.</summary>
    Default,

    /// <summary>Wall clock only (<c>UseTransactionEvidenceForGapSkipping = false</c>): Marten up to 9.16.0.</summary>
    WallClockOnly,
}

/// <summary>Marten document stores configured for the comparison, each in its own schema.</summary>
public static class MartenStores
{
    /// <summary>A store with string stream keys (our streams are pump serials) in <paramref name="schema"/>.</summary>
    public static DocumentStore Create(
        string connectionString, string schema, EventAppendMode mode, bool uniqueEventIds = false,
        GapPolicy? daemon = null, ISubscription? subscription = null)
    {
        return DocumentStore.For(opts =>
        {
            opts.Connection(connectionString);
            opts.DatabaseSchemaName = schema;
            opts.AutoCreateSchemaObjects = AutoCreate.All;
            opts.Events.StreamIdentity = StreamIdentity.AsString;
            opts.Events.AppendMode = mode;
            opts.Events.EnableUniqueIndexOnEventId = uniqueEventIds;
            opts.Events.AddEventType<DoseRecorded>();
            if (daemon is { } policy)
            {
                if (policy == GapPolicy.WallClockOnly)
                {
                    opts.Projections.UseTransactionEvidenceForGapSkipping = false;
                }

                if (subscription is not null)
                {
                    opts.Events.Subscribe(subscription);
                }
            }
        });
    }

    /// <summary>Appends one batch at <paramref name="expectedVersion"/> with the rows' own event ids, one session.</summary>
    public static async Task AppendAsync(DocumentStore store, string stream, long expectedVersion, IReadOnlyList<BenchEvent> batch, NpgsqlTransaction? tx = null, CancellationToken ct = default)
    {
        await using var session = tx is null ? store.LightweightSession() : store.LightweightSession(SessionOptions.ForTransaction(tx));
        var events = new List<object>(batch.Count);
        foreach (var e in batch)
        {
            var ev = session.Events.BuildEvent(e.Marten);
            ev.Id = e.Id;
            events.Add(ev);
        }

        session.Events.Append(stream, expectedVersion + batch.Count, events);
        await session.SaveChangesAsync(ct);
    }

    /// <summary>Appends one batch with no expected version (Marten's plain <c>Append</c>).</summary>
    public static async Task AppendUncheckedAsync(DocumentStore store, string stream, IReadOnlyList<BenchEvent> batch, CancellationToken ct = default)
    {
        await using var session = store.LightweightSession();
        var events = new List<object>(batch.Count);
        foreach (var e in batch)
        {
            var ev = session.Events.BuildEvent(e.Marten);
            ev.Id = e.Id;
            events.Add(ev);
        }

        session.Events.Append(stream, events);
        await session.SaveChangesAsync(ct);
    }
}

/// <summary>A subscription that records the id of every event the daemon hands it.</summary>
public sealed class CollectingSubscription : SubscriptionBase
{
    /// <summary>Event id → times delivered and when first (<see cref="System.Diagnostics.Stopwatch"/> ticks).</summary>
    public ConcurrentDictionary<Guid, (int Count, long FirstSeen)> Seen { get; } = new();

    /// <inheritdoc />
    public override Task<IChangeListener> ProcessEventsAsync(
        EventRange page, ISubscriptionController controller, IDocumentOperations operations, CancellationToken cancellationToken)
    {
        var now = System.Diagnostics.Stopwatch.GetTimestamp();
        foreach (var e in page.Events)
        {
            Seen.AddOrUpdate(e.Id, (1, now), (_, x) => (x.Count + 1, x.FirstSeen));
        }

        return Task.FromResult<IChangeListener>(NullChangeListener.Instance);
    }
}
