using System.Security.Cryptography;
using System.Text;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;

namespace PumpFleet.Domain.Pumps;

/// <summary>An event the planner accepted, with its envelope and idempotency key.</summary>
public sealed record PlannedEvent(PumpEvent Event, Guid EventId, long? Seq, DateTimeOffset ReceivedAt, bool ClockSuspect);

/// <summary>What to append for a batch, and what to answer.</summary>
public sealed record IngestPlan(IReadOnlyList<PlannedEvent> Events, IReadOnlyList<Rejection> Rejections, int Duplicates, int AcceptedDeviceEvents);

/// <summary>
/// Decides, without I/O, what a batch does to a pump: duplicates dropped by seq, domain rules, gaps, the clock rule.
/// The grain appends the plan and then folds it, so the decision is unit-testable without a cluster.
/// </summary>
public static class IngestPlanner
{
    /// <summary>Device clocks reset to dates before this after power loss (protocol.md §1, Time).</summary>
    public static readonly DateTimeOffset EarliestTrustedTime = new(2010, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Future tolerance of the clock rule.</summary>
    public static readonly TimeSpan FutureTolerance = TimeSpan.FromMinutes(5);

    /// <summary>Plans a batch against the current state.</summary>
    public static IngestPlan Plan(PumpState state, IngestBatch batch, Func<Guid> newId)
    {
        var rejections = new List<Rejection>();
        if (state.HubId is null || !string.Equals(state.HubId, batch.HubId, StringComparison.Ordinal))
        {
            rejections.Add(new Rejection
            {
                Code = RejectionCodes.NotPaired,
                Reason = state.HubId is null
                    ? $"Pump '{state.Serial}' is not paired with any hub; pair it with hub '{batch.HubId}' first."
                    : $"Pump '{state.Serial}' is paired with another hub, not '{batch.HubId}'.",
            });
            return new IngestPlan([], rejections, 0, 0);
        }

        var device = batch.Device ?? state.Device;
        if (device is null)
        {
            rejections.Add(new Rejection
            {
                Code = RejectionCodes.DeviceRequired,
                Reason = $"The first batch for pump '{state.Serial}' must carry the 'device' object (model, firmware, lot, reservoirCapacityMl).",
            });
            return new IngestPlan([], rejections, 0, 0);
        }

        var planned = new List<PlannedEvent>();
        if (batch.Device is not null && batch.Device != state.Device)
        {
            planned.Add(new PlannedEvent(new DeviceIdentified { At = batch.ReceivedAt, Device = batch.Device }, newId(), null, batch.ReceivedAt, false));
        }

        var duplicates = 0;
        var accepted = 0;
        var lastSeq = state.LastSeq;
        var lastAt = state.LastDeviceAt;
        var seenInBatch = new HashSet<long>();
        long previousInBatch = 0;
        foreach (var e in batch.Events)
        {
            if (e.Seq < 1)
            {
                rejections.Add(new Rejection { Seq = e.Seq, Code = RejectionCodes.InvalidSeq, Reason = $"seq must be ≥ 1, got {e.Seq}." });
                continue;
            }

            if (e.Seq <= previousInBatch)
            {
                rejections.Add(new Rejection
                {
                    Seq = e.Seq, Code = RejectionCodes.SeqNotIncreasing,
                    Reason = $"seq {e.Seq} does not increase within the batch (previous {previousInBatch}).",
                });
                continue;
            }

            previousInBatch = e.Seq;
            if (state.HasSeq(e.Seq) || !seenInBatch.Add(e.Seq))
            {
                duplicates++;
                continue;
            }

            if (DomainRule(e, device) is { } rule)
            {
                rejections.Add(rule);
                continue;
            }

            if (e.Seq > lastSeq + 1)
            {
                planned.Add(new PlannedEvent(new GapRecorded { At = e.At, FromSeq = lastSeq + 1, ToSeq = e.Seq - 1 }, newId(), null, batch.ReceivedAt, false));
            }

            var suspect = e.At > batch.ReceivedAt + FutureTolerance || e.At < EarliestTrustedTime ||
                          (e.Seq > lastSeq && lastAt is { } prev && e.At < prev);
            planned.Add(new PlannedEvent(e, DeviceEventId(state.Serial, e.Seq), e.Seq, batch.ReceivedAt, suspect));
            accepted++;
            if (e.Seq > lastSeq)
            {
                lastSeq = e.Seq;
                if (!suspect)
                {
                    lastAt = e.At;
                }
            }
        }

        return new IngestPlan(planned, rejections, duplicates, accepted);
    }

    /// <summary>Idempotency key of a device event: a name-based UUID of (serial, seq), the same on every resend.</summary>
    public static Guid DeviceEventId(string serial, long seq)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes($"pumpfleet/{serial}/{seq}"), hash);
        hash[6] = (byte)((hash[6] & 0x0F) | 0x50);   // version 5 layout (name-based)
        hash[8] = (byte)((hash[8] & 0x3F) | 0x80);   // RFC 4122 variant
        return new Guid(hash[..16], bigEndian: true);
    }

    private static Rejection? DomainRule(DeviceEvent e, DeviceInfo device)
    {
        // Capacity tolerance: a reservoir is filled a little past its nominal volume in practice, never by 10 %.
        var capacity = device.ReservoirCapacityMl * 1.1;
        string? negative = e switch
        {
            DoseDelivered x when x.VolumeMl < 0 => $"volumeMl {x.VolumeMl}",
            ReservoirLevelReported x when x.VolumeMl < 0 => $"volumeMl {x.VolumeMl}",
            RefillPerformed x when x.AddedMl < 0 || x.AspiratedResidualMl < 0 || x.ExpectedResidualMl < 0 =>
                $"refill volumes (added {x.AddedMl}, aspirated {x.AspiratedResidualMl}, expected {x.ExpectedResidualMl})",
            _ => null,
        };
        if (negative is not null)
        {
            return new Rejection { Seq = e.Seq, Code = RejectionCodes.NegativeVolume, Reason = $"{negative} is negative; volumes must be ≥ 0." };
        }

        string? broken = e switch
        {
            RefillPerformed x when x.AddedMl > capacity =>
                $"refill adds {x.AddedMl} mL to a {device.ReservoirCapacityMl} mL reservoir.",
            RefillPerformed x when x.AspiratedResidualMl > capacity =>
                $"aspirated residual {x.AspiratedResidualMl} mL exceeds the {device.ReservoirCapacityMl} mL reservoir.",
            ReservoirLevelReported x when x.VolumeMl > capacity =>
                $"reservoir level {x.VolumeMl} mL exceeds the {device.ReservoirCapacityMl} mL reservoir.",
            DoseDelivered x when x.From > x.At => $"dose interval starts ({x.From:O}) after it ends ({x.At:O}).",
            DoseDelivered x when x.VolumeMl > capacity => $"a single dose report of {x.VolumeMl} mL exceeds the {device.ReservoirCapacityMl} mL reservoir.",
            StatusReported { BatteryPct: < 0 or > 100 } x => $"batteryPct {x.BatteryPct} is outside 0–100.",
            PainReported { Score: < 0 or > 10 } x => $"pain score {x.Score} is outside 0–10.",
            PrescriptionSet { Mode: "continuous", RateMlPerDay: null or < 0 } => "a continuous prescription needs rateMlPerDay ≥ 0.",
            PrescriptionSet { Mode: "flex", Schedule: null or { Count: 0 } } => "a flex prescription needs a non-empty schedule.",
            PrescriptionSet x when x.Schedule?.Any(s => s.RateMlPerDay < 0 || !ProgrammedRate.TryParseTimeOfDay(s.Start, out _)) == true =>
                "every flex step needs start HH:MM and rateMlPerDay ≥ 0.",
            _ => null,
        };
        return broken is null ? null : new Rejection { Seq = e.Seq, Code = RejectionCodes.DomainRule, Reason = broken };
    }
}
