using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Streams;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Log;
using PumpFleet.Streaming;

namespace PumpFleet.ReadModels;

/// <summary>One cohort's sums in one log partition, as a tally grain reports them.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.CohortCount.v1")]
public sealed record CohortCount(
    [property: Id(0)] string Model, [property: Id(1)] string Firmware, [property: Id(2)] string Lot,
    [property: Id(3)] long Pumps, [property: Id(4)] long SpanMicros, [property: Id(5)] long Alarms,
    [property: Id(6)] long CriticalAlarms, [property: Id(7)] long Anomalies);

/// <summary>The cohort tally of one log partition (key: the partition, "0"…"15").</summary>
[Alias("pumpfleet.ICohortTallyGrain")]
public interface ICohortTallyGrain : IGrainWithStringKey
{
    /// <summary>The partition's per-cohort sums as counted so far (from memory; no query).</summary>
    [Alias("GetCohorts")]
    Task<IReadOnlyList<CohortCount>> GetCohortsAsync();
}

/// <summary>
/// Keeps the cohort counts of one log partition from the <c>pumpfleet-log</c> stream (issue 14) in a
/// <see cref="CohortTally"/>, saved to <c>pf_cohort_tally</c> with the checkpoint <c>consumer:cohort-tally:{p}of16</c>
/// (activation, delivery, dedupe and saving: <see cref="PartitionTallyGrain{TTally, TMember}"/>). The cohort signal job
/// asks the 16 grains for their sums instead of querying the read models.
/// </summary>
[ImplicitStreamSubscription(LogStreams.PartitionNamespace)]
public sealed class CohortTallyGrain(
    CohortTallyStore store, ILogPartitionReader log, ICheckpointStore checkpoints, IEventReader reader, IOptions<PartitionTallyOptions> options,
    ILogger<CohortTallyGrain> logger)
    : PartitionTallyGrain<CohortTally, TallyMember>(store, log, checkpoints, reader, options, logger), ICohortTallyGrain
{
    /// <summary>The checkpoint name of partition <paramref name="partition"/>'s tally.</summary>
    public static string CheckpointName(int partition) => PartitionTallies.CheckpointName("cohort-tally", partition);

    /// <inheritdoc />
    protected override string Name => "Cohort tally";

    /// <inheritdoc />
    protected override string Kind => "cohort-tally";

    /// <inheritdoc />
    public Task<IReadOnlyList<CohortCount>> GetCohortsAsync() => Task.FromResult<IReadOnlyList<CohortCount>>(
        [.. Tally.Totals.Select(t => new CohortCount(t.Key.Model, t.Key.Firmware, t.Key.Lot, t.Value.Pumps, t.Value.SpanMicros,
            t.Value.Alarms, t.Value.CriticalAlarms, t.Value.Anomalies))]);
}
