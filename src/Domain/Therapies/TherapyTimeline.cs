using System.Globalization;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;
using PumpFleet.Contracts.Views;

namespace PumpFleet.Domain.Therapies;

/// <summary>
/// The therapy timeline: the therapy's own events and, for each of its pumps, the refills, alarms and anomalies of
/// that pump while it was implanted in this therapy (a pump's factory or bench history before the implant, and
/// anything after its explant, are not the patient's), in time order across serials.
/// </summary>
public static class TherapyTimeline
{
    /// <summary>
    /// Merges <paramref name="therapy"/>'s events with <paramref name="pumpItems"/> (each naming its serial), keeping
    /// a pump's items inside its implant window, ordered by time; at equal times the therapy's events come first, in
    /// stream order (a replacement's explant before the new pump's implant).
    /// </summary>
    public static IReadOnlyList<TimelineEntry> Build(TherapyView therapy, IEnumerable<TimelineEntry> pumpItems)
    {
        ArgumentNullException.ThrowIfNull(therapy);
        ArgumentNullException.ThrowIfNull(pumpItems);
        var kept = pumpItems.Where(e => e.Serial is { } serial
            && therapy.Pumps.Any(p => p.Serial == serial && e.At >= p.ImplantedAt && (p.ExplantedAt is not { } end || e.At <= end)));
        return [.. therapy.Events.Select((e, i) => (Entry: e, Rank: 0, Index: i))
            .Concat(kept.Select((e, i) => (Entry: e, Rank: 1, Index: i)))
            .OrderBy(x => x.Entry.At).ThenBy(x => x.Rank).ThenBy(x => x.Index)
            .Select(x => x.Entry)];
    }

    /// <summary>The timeline entry of a therapy event.</summary>
    public static TimelineEntry EntryOf(TherapyEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        var details = new Dictionary<string, string>(StringComparer.Ordinal);
        void Add(string key, object? value)
        {
            if (value is not null)
            {
                details[key] = Convert.ToString(value, CultureInfo.InvariantCulture)!;
            }
        }

        string? serial = null;
        string summary;
        switch (e)
        {
            case TherapyOpened o:
                Add("indication", o.Indication);
                summary = o.Indication is null ? "Therapy registered" : $"Therapy registered ({o.Indication})";
                break;
            case TherapyTrialRecorded t:
                Add("kind", t.Kind);
                Add("drug", t.Drug);
                Add("doses", t.Doses);
                Add("externalPump", t.ExternalPump);
                Add("endedAt", t.EndedAt?.ToString("O", CultureInfo.InvariantCulture));
                summary = t.Kind switch
                {
                    "continuous" => $"Continuous trial with external pump {t.ExternalPump}",
                    "multi-dose" => t.Doses is { } n ? $"Multi-dose trial ({n} doses, no pump)" : "Multi-dose trial (no pump)",
                    _ => "Single-dose trial",
                } + (t.Drug is null ? "" : $", {t.Drug}");
                break;
            case TherapyResponseRecorded r:
                Add("painBefore", r.PainBefore);
                Add("painAfter", r.PainAfter);
                var relief = r.PainBefore > 0 ? 100.0 * (r.PainBefore - r.PainAfter) / r.PainBefore : 0;
                Add("reliefPct", Math.Round(relief, 1));
                summary = string.Create(CultureInfo.InvariantCulture, $"Trial response: pain {r.PainBefore} → {r.PainAfter} (NRS 0–10, {relief:0}% relief)");
                break;
            case TherapyDecided d:
                Add("proceed", d.Proceed ? "true" : "false");
                summary = d.Proceed ? "Decision: proceed to implant" : "Decision: do not proceed";
                break;
            case PumpImplanted i:
                serial = i.Serial;
                summary = $"Pump {i.Serial} implanted";
                break;
            case PumpExplanted x:
                serial = x.Serial;
                Add("reason", x.Reason);
                summary = $"Pump {x.Serial} explanted ({x.Reason})";
                break;
            default:
                summary = EventTypes.NameOf(e);
                break;
        }

        Add("note", e.Note);
        return new TimelineEntry
        {
            At = e.At, Kind = EventTypes.NameOf(e), Serial = serial, Summary = summary, By = e.By,
            Severity = e is PumpExplanted { Reason: not "replacement" and not "therapy-ended" } ? "warning" : null,
            Details = details,
        };
    }
}
