using PumpFleet.Contracts;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;
using PumpFleet.Domain.Detection;
using PumpFleet.Domain.Detection.CohortFlow;

namespace PumpFleet.ReadModels;

/// <summary>
/// One pump as the cohort flow tally keeps it: identity from the latest <c>device.identified</c>, the motor volume
/// reported so far and at the last refill, the refills seen, the last refill's time, the flow sample of the last
/// complete refill cycle (null when that cycle had none), and the highest stream version applied (the dedupe key).
/// </summary>
public sealed record FlowMember(
    string Serial, string? Model, string? Firmware, string? Lot, double DeliveredTotalMl, double DeliveredAtRefillMl, int Refills,
    DateTimeOffset? LastRefillAt, double? Factor, double? CycleMl, long Version)
{
    /// <summary>The pump's refill-flow sample (as <c>pf_pump_status.refill_flow_*</c> holds it), or null.</summary>
    public RefillFlowSample? Sample => Factor is { } f && LastRefillAt is { } at && CycleMl is { } c
        ? new RefillFlowSample(Serial, Model, Firmware, Lot, at, f, c)
        : null;
}

/// <summary>
/// Each pump's last complete refill-cycle flow factor in one log partition, kept incrementally from the partition's
/// events (the samples of the <c>cohort-flow-deviation</c> job, issue 16): the motor volume of <c>dose.delivered</c>
/// summed in stream order, and at each <c>refill</c> the factor of the cycle it closed by the same rule as the pump's
/// fold (<see cref="RefillFlow.FactorOf"/>, minimum cycle 0.1 mL as the pump projection writes it; a refill with a
/// suspect clock keeps the previous refill's time). Each pump's events must come in version order without holes; a
/// redelivery is dropped by version. Differs from the fold only when a pump's events arrive out of seq order (a late
/// dose of a closed cycle counts into the next one here; the fold re-folds in seq order): rare, and one pump's vote.
/// Pure: no I/O, not thread-safe (one grain owns it).
/// </summary>
public sealed class CohortFlowTally : IPartitionTally<FlowMember>
{
    /// <summary>The smallest cycle a sample is kept for (the pump projection's; the job applies the configured minimum).</summary>
    public const double MinCycleMl = 0.1;

    private readonly Dictionary<string, FlowMember> _members = new(StringComparer.Ordinal);
    private readonly HashSet<string> _dirty = new(StringComparer.Ordinal);

    /// <summary>Pumps known.</summary>
    public int Pumps => _members.Count;

    /// <summary>The highest version applied for <paramref name="serial"/> (0: none).</summary>
    public long VersionOf(string serial) => _members.TryGetValue(serial, out var m) ? m.Version : 0;

    /// <summary>A pump as kept, or null.</summary>
    public FlowMember? Member(string serial) => _members.GetValueOrDefault(serial);

    /// <summary>Loads a pump's saved state (at start, before any event).</summary>
    public void Load(FlowMember member)
    {
        ArgumentNullException.ThrowIfNull(member);
        _members[member.Serial] = member;
    }

    /// <summary>The samples of pumps whose last refill closed a cycle at or after <paramref name="since"/>.</summary>
    public IEnumerable<RefillFlowSample> Samples(DateTimeOffset since) =>
        _members.Values.Select(m => m.Sample).OfType<RefillFlowSample>().Where(s => s.At >= since);

    /// <summary>
    /// Applies one committed event of <paramref name="streamId"/> at <paramref name="version"/>. Only
    /// <c>device.identified</c>, <c>dose.delivered</c> and <c>refill</c> payloads are read; any other type (one this
    /// build does not know too) moves the version only, never a failure.
    /// </summary>
    public TallyOutcome Apply(string streamId, long version, string type, string data, bool clockSuspect)
    {
        ArgumentNullException.ThrowIfNull(streamId);
        if (!StreamIds.IsPump(streamId))
        {
            return TallyOutcome.NotAPump;
        }

        var m = _members.TryGetValue(streamId, out var known) ? known : new FlowMember(streamId, null, null, null, 0, 0, 0, null, null, null, 0);
        if (version <= m.Version)
        {
            return TallyOutcome.Duplicate;
        }

        if (version > m.Version + 1)
        {
            return TallyOutcome.Gap;
        }

        var next = m with { Version = version };
        switch (type)
        {
            case "device.identified" when EventJson.Deserialize(type, data) is DeviceIdentified x:
                next = next with { Model = x.Device.Model, Firmware = x.Device.Firmware, Lot = x.Device.Lot };
                break;
            case "dose.delivered" when EventJson.Deserialize(type, data) is DoseDelivered x:
                next = next with { DeliveredTotalMl = next.DeliveredTotalMl + x.VolumeMl };
                break;
            case "refill" when EventJson.Deserialize(type, data) is RefillPerformed x:
            {
                double? cycle = next.Refills > 0 ? next.DeliveredTotalMl - next.DeliveredAtRefillMl : null;
                var check = new RefillCheck
                {
                    Refills = next.Refills + 1, CycleDeliveredMl = cycle,
                    ExpectedResidualMl = x.ExpectedResidualMl, AspiratedResidualMl = x.AspiratedResidualMl,
                };
                var factor = RefillFlow.FactorOf(check, MinCycleMl);
                next = next with
                {
                    Refills = next.Refills + 1, DeliveredAtRefillMl = next.DeliveredTotalMl,
                    LastRefillAt = clockSuspect ? next.LastRefillAt ?? x.At : x.At,
                    Factor = factor, CycleMl = factor is null ? null : cycle,
                };
                break;
            }
        }

        _members[streamId] = next;
        _dirty.Add(streamId);
        return TallyOutcome.Applied;
    }

    // The flow tally reads no device times: the refill's own payload dates the sample.
    TallyOutcome IPartitionTally<FlowMember>.Apply(string streamId, long version, string type, string data, DateTimeOffset? deviceTime, bool clockSuspect) =>
        Apply(streamId, version, type, data, clockSuspect);

    /// <summary>The pumps changed since the last call (to save), and forgets them.</summary>
    public IReadOnlyList<FlowMember> TakeChanged()
    {
        var changed = _dirty.Select(s => _members[s]).ToList();
        _dirty.Clear();
        return changed;
    }

    /// <summary>Marks pumps as changed again (their save failed).</summary>
    public void MarkChanged(IEnumerable<FlowMember> members)
    {
        ArgumentNullException.ThrowIfNull(members);
        foreach (var m in members)
        {
            _dirty.Add(m.Serial);
        }
    }
}
