using PumpFleet.Contracts;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;

namespace PumpFleet.ReadModels;

/// <summary>A cohort: model × firmware × lot.</summary>
public readonly record struct CohortKey(string Model, string Firmware, string Lot);

/// <summary>
/// One pump's contribution to its cohort, as the tally keeps it: identity from the latest <c>device.identified</c>,
/// first and last trusted device-event time, alarm, critical-alarm and anomaly counts, and the highest stream version
/// applied (the dedupe key of at-least-once delivery).
/// </summary>
public sealed record TallyMember(
    string Serial, string? Model, string? Firmware, string? Lot, DateTimeOffset? First, DateTimeOffset? Last,
    int Alarms, int CriticalAlarms, int Anomalies, long Version)
{
    /// <summary>The pump's cohort, or null before it identified itself (such a pump belongs to no cohort).</summary>
    public CohortKey? Cohort => string.IsNullOrEmpty(Model) ? null : new CohortKey(Model, Firmware ?? "", Lot ?? "");

    /// <summary>Exposure in whole microseconds (the store's time resolution), so the cohort sums stay exact under add and subtract.</summary>
    public long SpanMicros => First is { } f && Last is { } l ? (l - f).Ticks / 10 : 0;
}

/// <summary>A cohort's running sums. Pump-days are kept in microseconds so that subtracting a pump's old contribution is exact.</summary>
public sealed record CohortTotals(long Pumps, long SpanMicros, long Alarms, long CriticalAlarms, long Anomalies)
{
    /// <summary>Nothing.</summary>
    public static readonly CohortTotals Zero = new(0, 0, 0, 0, 0);

    /// <summary>Pump-days (each pump's first to last trusted device-event time).</summary>
    public double PumpDays => SpanMicros / 86_400_000_000.0;

    /// <summary>These sums plus <paramref name="o"/> times <paramref name="sign"/>.</summary>
    public CohortTotals Add(CohortTotals o, int sign = 1) => new(
        Pumps + (sign * o.Pumps), SpanMicros + (sign * o.SpanMicros), Alarms + (sign * o.Alarms),
        CriticalAlarms + (sign * o.CriticalAlarms), Anomalies + (sign * o.Anomalies));

    /// <summary>One pump's contribution.</summary>
    public static CohortTotals Of(TallyMember m) => new(1, m.SpanMicros, m.Alarms, m.CriticalAlarms, m.Anomalies);
}

/// <summary>What <see cref="CohortTally.Apply"/> did with an event.</summary>
public enum TallyOutcome
{
    /// <summary>Applied: the pump's counts moved.</summary>
    Applied,

    /// <summary>At or below the version already applied (a redelivery): dropped.</summary>
    Duplicate,

    /// <summary>Versions between the applied one and this are missing: the caller reads them from the store first.</summary>
    Gap,

    /// <summary>Not a pump's stream (a cohort's own stream): not counted.</summary>
    NotAPump,
}

/// <summary>
/// The cohort counts of one log partition, kept incrementally from the partition's events: per pump its
/// <see cref="TallyMember"/>, per cohort the running <see cref="CohortTotals"/> (a pump's old contribution is taken
/// out and its new one added when it changes, so a pump whose firmware changes moves between cohorts cleanly). Each
/// pump's events must be applied in version order without holes; a redelivered event is recognised by its version and
/// dropped, so at-least-once delivery counts every event exactly once. The same rules as the cohorts projection
/// (<see cref="CohortProjection"/>): exposure from trusted device-event times only, anomalies of pump streams only.
/// Pure: no I/O, not thread-safe (one grain owns it).
/// </summary>
public sealed class CohortTally : IPartitionTally<TallyMember>
{
    private readonly Dictionary<string, TallyMember> _members = new(StringComparer.Ordinal);
    private readonly Dictionary<CohortKey, CohortTotals> _totals = [];
    private readonly HashSet<string> _dirty = new(StringComparer.Ordinal);

    /// <summary>Pumps known.</summary>
    public int Pumps => _members.Count;

    /// <summary>Per cohort the running sums (cohorts whose last pump left are not listed).</summary>
    public IReadOnlyDictionary<CohortKey, CohortTotals> Totals => _totals;

    /// <summary>The highest version applied for <paramref name="serial"/> (0: none).</summary>
    public long VersionOf(string serial) => _members.TryGetValue(serial, out var m) ? m.Version : 0;

    /// <summary>Loads a pump's saved contribution (at start, before any event).</summary>
    public void Load(TallyMember member)
    {
        ArgumentNullException.ThrowIfNull(member);
        Replace(member);
    }

    /// <summary>
    /// Applies one committed event of <paramref name="streamId"/> at <paramref name="version"/>.
    /// <paramref name="deviceTime"/> is the stored device time (set for device events only, as the pump grain stores
    /// them); only <c>device.identified</c> and <c>alarm.raised</c> payloads are read, so an event type this build does
    /// not know is counted for exposure and otherwise passed over, never a failure.
    /// </summary>
    public TallyOutcome Apply(string streamId, long version, string type, string data, DateTimeOffset? deviceTime, bool clockSuspect)
    {
        ArgumentNullException.ThrowIfNull(streamId);
        if (!StreamIds.IsPump(streamId))
        {
            return TallyOutcome.NotAPump;
        }

        var m = _members.TryGetValue(streamId, out var known) ? known : new TallyMember(streamId, null, null, null, null, null, 0, 0, 0, 0);
        if (version <= m.Version)
        {
            return TallyOutcome.Duplicate;
        }

        if (version > m.Version + 1)
        {
            return TallyOutcome.Gap;
        }

        var next = m with { Version = version };
        if (deviceTime is { } time && !clockSuspect)
        {
            // Whole microseconds, as the store keeps them, so a reloaded tally sums to exactly the same exposure.
            var utc = time.UtcTicks;
            var at = new DateTimeOffset(utc - (utc % 10), TimeSpan.Zero);
            next = next with
            {
                First = next.First is { } f && f <= at ? f : at,
                Last = next.Last is { } l && l >= at ? l : at,
            };
        }

        next = type switch
        {
            "device.identified" when EventJson.Deserialize(type, data) is DeviceIdentified x =>
                next with { Model = x.Device.Model, Firmware = x.Device.Firmware, Lot = x.Device.Lot },
            "alarm.raised" when EventJson.Deserialize(type, data) is AlarmRaised x =>
                next with { Alarms = next.Alarms + 1, CriticalAlarms = next.CriticalAlarms + (x.Severity == "critical" ? 1 : 0) },
            "anomaly.detected" => next with { Anomalies = next.Anomalies + 1 },
            _ => next,
        };
        Replace(next);
        _dirty.Add(streamId);
        return TallyOutcome.Applied;
    }

    /// <summary>The pumps changed since the last call (to save), and forgets them.</summary>
    public IReadOnlyList<TallyMember> TakeChanged()
    {
        var changed = _dirty.Select(s => _members[s]).ToList();
        _dirty.Clear();
        return changed;
    }

    /// <summary>Marks pumps as changed again (their save failed).</summary>
    public void MarkChanged(IEnumerable<TallyMember> members)
    {
        ArgumentNullException.ThrowIfNull(members);
        foreach (var m in members)
        {
            _dirty.Add(m.Serial);
        }
    }

    private void Replace(TallyMember next)
    {
        if (_members.TryGetValue(next.Serial, out var old) && old.Cohort is { } oldKey)
        {
            var left = _totals[oldKey].Add(CohortTotals.Of(old), -1);
            if (left.Pumps == 0)
            {
                _totals.Remove(oldKey);
            }
            else
            {
                _totals[oldKey] = left;
            }
        }

        _members[next.Serial] = next;
        if (next.Cohort is { } key)
        {
            _totals[key] = _totals.GetValueOrDefault(key, CohortTotals.Zero).Add(CohortTotals.Of(next));
        }
    }
}
