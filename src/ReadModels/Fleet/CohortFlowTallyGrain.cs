using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Streams;
using PumpFleet.Domain.Detection.CohortFlow;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Log;
using PumpFleet.Streaming;

namespace PumpFleet.ReadModels;

/// <summary>The refill-flow samples of one log partition (key: the partition, "0"…"15").</summary>
[Alias("pumpfleet.ICohortFlowTallyGrain")]
public interface ICohortFlowTallyGrain : IGrainWithStringKey
{
    /// <summary>
    /// The partition's pumps' last complete refill-cycle samples closed at or after <paramref name="since"/>, as kept
    /// so far (from memory; no query).
    /// </summary>
    [Alias("GetSamples")]
    Task<IReadOnlyList<FlowSample>> GetSamplesAsync(DateTimeOffset since);
}

/// <summary>One pump's refill-flow sample as a flow tally grain reports it (a <see cref="RefillFlowSample"/> on the wire).</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.FlowSample.v1")]
public sealed record FlowSample(
    [property: Id(0)] string Serial, [property: Id(1)] string? Model, [property: Id(2)] string? Firmware, [property: Id(3)] string? Lot,
    [property: Id(4)] DateTimeOffset At, [property: Id(5)] double Factor, [property: Id(6)] double CycleMl)
{
    /// <summary>The domain sample.</summary>
    public RefillFlowSample ToSample() => new(Serial, Model, Firmware, Lot, At, Factor, CycleMl);
}

/// <summary>
/// Keeps each pump's last complete refill-cycle flow factor of one log partition from the <c>pumpfleet-log</c> stream,
/// for the <c>cohort-flow-deviation</c> job (issue 16), in a <see cref="CohortFlowTally"/> saved to <c>pf_cohort_flow</c>
/// with the checkpoint <c>consumer:cohort-flow:{p}of16</c> (activation, delivery, dedupe and saving:
/// <see cref="PartitionTallyGrain{TTally, TMember}"/>, as for <see cref="CohortTallyGrain"/>). <c>CohortFlowJob</c> asks
/// the 16 grains for their samples instead of scanning <c>pf_pump_status</c>.
/// </summary>
[ImplicitStreamSubscription(LogStreams.PartitionNamespace)]
public sealed class CohortFlowTallyGrain(
    CohortFlowTallyStore store, ILogPartitionReader log, ICheckpointStore checkpoints, IEventReader reader, IOptions<PartitionTallyOptions> options,
    ILogger<CohortFlowTallyGrain> logger)
    : PartitionTallyGrain<CohortFlowTally, FlowMember>(store, log, checkpoints, reader, options, logger), ICohortFlowTallyGrain
{
    /// <summary>The checkpoint name of partition <paramref name="partition"/>'s flow tally.</summary>
    public static string CheckpointName(int partition) => PartitionTallies.CheckpointName("cohort-flow", partition);

    /// <inheritdoc />
    protected override string Name => "Cohort flow tally";

    /// <inheritdoc />
    protected override string Kind => "cohort-flow";

    /// <inheritdoc />
    public Task<IReadOnlyList<FlowSample>> GetSamplesAsync(DateTimeOffset since) => Task.FromResult<IReadOnlyList<FlowSample>>(
        [.. Tally.Samples(since).Select(s => new FlowSample(s.Serial, s.Model, s.Firmware, s.Lot, s.At, s.Factor, s.CycleMl))]);
}
