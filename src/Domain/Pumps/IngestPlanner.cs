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

    /// <summary>Default of <see cref="PumpGrainOptions.SeqWindow"/>: how far above the highest stored seq an event may be.</summary>
    public const long DefaultSeqWindow = 1_000_000;

    // Rejections of an event's content: the seq is accounted for (answered), unlike a seq that is itself wrong.
    private static readonly HashSet<string> SeqNeutralCodes = new(StringComparer.Ordinal)
    {
        RejectionCodes.InvalidSeq, RejectionCodes.SeqNotIncreasing, RejectionCodes.SeqOutOfRange,
    };

    /// <summary>Plans a batch against the current state.</summary>
    public static IngestPlan Plan(PumpState state, IngestBatch batch, Func<Guid> newId, long seqWindow = DefaultSeqWindow)
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
            // Event time like everything else: the device was known at least as early as the batch's oldest event
            // (a backlog uploaded late still shows its device in a view as of its own time).
            var identifiedAt = batch.Events.Where(e => e.At >= EarliestTrustedTime && e.At <= batch.ReceivedAt + FutureTolerance)
                .Select(e => (DateTimeOffset?)e.At).Min() ?? batch.ReceivedAt;
            planned.Add(new PlannedEvent(new DeviceIdentified { At = identifiedAt, Device = batch.Device }, newId(), null, batch.ReceivedAt, false));
        }

        var duplicates = 0;
        var accepted = 0;
        var lastSeq = state.LastSeq;
        var lastAt = state.LastDeviceAt;
        var seenInBatch = new HashSet<long>();
        var accountedRejections = new SortedDictionary<long, string>();
        // Sequence sanity: a seq beyond the window would make every seq below it a gap (and, before the
        // watermark, jumped the ack): it is refused and moves nothing.
        var maxAllowed = Math.Min(RejectionCodes.MaxSeq, state.LastSeq > RejectionCodes.MaxSeq - seqWindow ? RejectionCodes.MaxSeq : state.LastSeq + seqWindow);
        long previousInBatch = 0;
        foreach (var e in batch.Events)
        {
            if (e.Seq < 1)
            {
                rejections.Add(new Rejection { Seq = e.Seq, Code = RejectionCodes.InvalidSeq, Reason = $"seq must be ≥ 1, got {e.Seq}." });
                continue;
            }

            if (e.Seq > maxAllowed)
            {
                rejections.Add(OutOfRange(e.Seq, state.LastSeq, seqWindow));
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
                if (state.Seqs.IsOpen(e.Seq))
                {
                    accountedRejections[e.Seq] = rule.Code;
                }

                continue;
            }

            // A declared loss directly below its own seq is not a gap.
            var gapFrom = Math.Max(lastSeq, state.Seqs.Horizon) + 1;
            var gapTo = e is EventsLost l && l.ToSeq == e.Seq - 1 ? l.FromSeq - 1 : e.Seq - 1;
            if (gapTo >= gapFrom)
            {
                planned.Add(new PlannedEvent(new GapRecorded { At = e.At, FromSeq = gapFrom, ToSeq = gapTo }, newId(), null, batch.ReceivedAt, false));
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

        // Events the gateway refused for their content are accounted for too, unless their seq is itself wrong,
        // already settled, or taken by a valid event of this batch.
        foreach (var r in batch.RejectedSeqs ?? [])
        {
            if (r.Seq >= 1 && r.Seq <= maxAllowed && !SeqNeutralCodes.Contains(r.Code) && !seenInBatch.Contains(r.Seq) && state.Seqs.IsOpen(r.Seq))
            {
                accountedRejections.TryAdd(r.Seq, r.Code);
            }
        }

        if (accountedRejections.Count > 0)
        {
            // Last in the plan: gap.recorded before it may have extended the horizon over these seqs.
            planned.Add(new PlannedEvent(new SeqsRejected
            {
                At = batch.ReceivedAt, Rejected = [.. accountedRejections.Select(x => new RejectedSeq(x.Key, x.Value))],
            }, newId(), null, batch.ReceivedAt, false));
        }

        return new IngestPlan(planned, rejections, duplicates, accepted);
    }

    private static Rejection OutOfRange(long seq, long highest, long window) => new()
    {
        Seq = seq, Code = RejectionCodes.SeqOutOfRange,
        Reason = seq > RejectionCodes.MaxSeq
            ? $"seq {seq} is above 2^53 − 1 ({RejectionCodes.MaxSeq}), the largest seq the protocol allows."
            : $"seq {seq} is more than {window} above the highest stored seq {highest}; it is refused and moves nothing.",
    };

    /// <summary>Idempotency key of a device event: a name-based UUID of (serial, seq), the same on every resend.</summary>
    public static Guid DeviceEventId(string serial, long seq)
    {
        Span<byte> hash = stackalloc byte[32];
        // The name is written straight as UTF-8 (no string, no byte array: two per event on the ingest path, issue 15);
        // a name too long for the buffer takes the encoder. The same bytes either way, so the same id.
        Span<byte> name = stackalloc byte[256];
        if (System.Text.Unicode.Utf8.TryWrite(name, System.Globalization.CultureInfo.InvariantCulture, $"pumpfleet/{serial}/{seq}", out var length))
        {
            SHA256.HashData(name[..length], hash);
        }
        else
        {
            SHA256.HashData(Encoding.UTF8.GetBytes(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"pumpfleet/{serial}/{seq}")), hash);
        }

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

        if (e is EventsLost lost && (lost.FromSeq < 1 || lost.FromSeq > lost.ToSeq || lost.ToSeq >= lost.Seq))
        {
            return new Rejection
            {
                Seq = e.Seq, Code = RejectionCodes.InvalidLostRange,
                Reason = $"events.lost range {lost.FromSeq}..{lost.ToSeq} must satisfy 1 ≤ fromSeq ≤ toSeq < seq {lost.Seq}.",
            };
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
