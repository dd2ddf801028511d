using System.Globalization;
using PumpFleet.Contracts.Events;

namespace PumpFleet.Domain.Pumps;

/// <summary>
/// Integrates a prescription's programmed rate over event time. Flex schedules are read on the pump's clock as UTC
/// (the hub protocol carries no time zone): a step applies from its <c>HH:MM</c> until the next step, wrapping at midnight.
/// </summary>
public static class ProgrammedRate
{
    /// <summary>Volume (mL) the prescription asks for between <paramref name="from"/> and <paramref name="to"/>.</summary>
    public static double Integrate(PrescriptionSet? rx, DateTimeOffset from, DateTimeOffset to)
    {
        if (rx is null || to <= from)
        {
            return 0;
        }

        if (rx.Mode == "continuous" || rx.Schedule is not { Count: > 0 })
        {
            return (rx.RateMlPerDay ?? 0) * (to - from).TotalDays;
        }

        var steps = Steps(rx.Schedule);
        double volume = 0;
        var t = from;
        while (t < to)
        {
            var dayStart = new DateTimeOffset(t.UtcDateTime.Date, TimeSpan.Zero);
            var tod = t - dayStart;
            var (rate, nextBoundary) = RateAt(steps, tod);
            var end = dayStart + nextBoundary;
            if (end > to)
            {
                end = to;
            }

            volume += rate * (end - t).TotalDays;
            t = end;
        }

        return volume;
    }

    /// <summary>The prescription's mean daily volume (mL/day): the continuous rate, or the schedule integrated over a day.</summary>
    public static double DailyRate(PrescriptionSet? rx)
    {
        if (rx is null)
        {
            return 0;
        }

        var day = new DateTimeOffset(2020, 1, 1, 0, 0, 0, TimeSpan.Zero);
        return Integrate(rx, day, day.AddDays(1));
    }

    /// <summary>The programmed rate (mL/day) in force at <paramref name="at"/>.</summary>
    public static double RateAt(PrescriptionSet? rx, DateTimeOffset at)
    {
        if (rx is null)
        {
            return 0;
        }

        if (rx.Mode == "continuous" || rx.Schedule is not { Count: > 0 })
        {
            return rx.RateMlPerDay ?? 0;
        }

        var steps = Steps(rx.Schedule);
        return RateAt(steps, at - new DateTimeOffset(at.UtcDateTime.Date, TimeSpan.Zero)).Rate;
    }

    /// <summary>Parses <c>HH:MM</c>; false when malformed.</summary>
    public static bool TryParseTimeOfDay(string s, out TimeSpan tod)
    {
        tod = default;
        if (s.Length != 5 || s[2] != ':' ||
            !int.TryParse(s.AsSpan(0, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var h) ||
            !int.TryParse(s.AsSpan(3, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var m) ||
            h > 23 || m > 59)
        {
            return false;
        }

        tod = new TimeSpan(h, m, 0);
        return true;
    }

    private static List<(TimeSpan Start, double Rate)> Steps(IReadOnlyList<FlexStep> schedule) =>
        [.. schedule
            .Select(s => (Start: TryParseTimeOfDay(s.Start, out var t) ? t : TimeSpan.Zero, Rate: s.RateMlPerDay))
            .OrderBy(s => s.Start)];

    // Rate at a time of day and the time of day at which it next changes (≤ 24 h).
    private static (double Rate, TimeSpan NextBoundary) RateAt(List<(TimeSpan Start, double Rate)> steps, TimeSpan tod)
    {
        var idx = steps.FindLastIndex(s => s.Start <= tod);
        var rate = idx >= 0 ? steps[idx].Rate : steps[^1].Rate;   // before the first step: yesterday's last step
        var next = idx + 1 < steps.Count ? steps[idx + 1].Start : TimeSpan.FromDays(1);
        return (rate, next);
    }
}
