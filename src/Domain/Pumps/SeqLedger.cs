using System.Text.Json.Serialization;
using PumpFleet.Contracts.Views;

namespace PumpFleet.Domain.Pumps;

/// <summary>
/// What the platform knows about each seq of a pump, for the acknowledgement that cannot lose data
/// (protocol.md §1): every seq up to <see cref="Horizon"/> is exactly one of stored, missing, rejected or lost.
/// Only the exceptions are kept, as interval sets; stored is the rest. All operations are logarithmic in the
/// number of ranges.
/// </summary>
public sealed class SeqLedger
{
    /// <summary>The most ranges an ack lists in <c>missing</c>.</summary>
    public const int MaxMissingInAck = 32;

    private SeqIntervals _missing = new();
    private SeqIntervals _rejected = new();
    private SeqIntervals _lost = new();

    /// <summary>The highest seq the pump's stream says anything about (stored, rejected, lost or known missing).</summary>
    public long Horizon { get; set; }

    /// <summary>Seqs below the horizon not accounted for: the gaps a hub must fill or declare lost.</summary>
    public List<SeqRange> Missing
    {
        get => [.. _missing.Ranges];
        set => _missing = Build(value);
    }

    /// <summary>Seqs refused for their content (answered with a reject); a later valid event with such a seq is stored.</summary>
    public List<SeqRange> Rejected
    {
        get => [.. _rejected.Ranges];
        set => _rejected = Build(value);
    }

    /// <summary>Seqs declared lost by <c>events.lost</c> and not received since.</summary>
    public List<SeqRange> Lost
    {
        get => [.. _lost.Ranges];
        set => _lost = Build(value);
    }

    /// <summary>Number of gap ranges.</summary>
    [JsonIgnore]
    public int MissingCount => _missing.Count;

    /// <summary>The contiguous watermark: every seq ≤ it is stored, rejected or lost.</summary>
    [JsonIgnore]
    public long Watermark => _missing.First is { } first ? first.From - 1 : Horizon;

    /// <summary>True when an event with this seq is stored.</summary>
    public bool IsStored(long seq) =>
        seq >= 1 && seq <= Horizon && !_missing.Contains(seq) && !_rejected.Contains(seq) && !_lost.Contains(seq);

    /// <summary>True when the seq is not yet accounted for (missing, or above the horizon).</summary>
    public bool IsOpen(long seq) => seq > Horizon || _missing.Contains(seq);

    /// <summary>True while the seq is inside a gap (below the horizon, not yet accounted for).</summary>
    public bool IsMissing(long seq) => _missing.Contains(seq);

    /// <summary>True while any seq of the range is inside a gap.</summary>
    public bool IsMissingAny(long from, long to) => _missing.Intersect(from, to).Count > 0;

    /// <summary>The first <paramref name="count"/> gap ranges.</summary>
    public List<SeqRange> FirstMissing(int count = MaxMissingInAck) => _missing.Take(count);

    /// <summary>An event with this seq was stored.</summary>
    public void MarkStored(long seq)
    {
        if (seq > Horizon)
        {
            Extend(seq - 1);
            Horizon = seq;
            return;
        }

        _missing.Remove(seq, seq);
        _rejected.Remove(seq, seq);
        _lost.Remove(seq, seq);
    }

    /// <summary>A <c>gap.recorded</c>: the range is known to be missing (only extends the horizon; never un-stores).</summary>
    public void MarkMissing(long to) => Extend(to);

    /// <summary>An event with this seq was refused for its content.</summary>
    public void MarkRejected(long seq)
    {
        if (seq < 1)
        {
            return;
        }

        Extend(seq);
        if (_missing.Contains(seq))
        {
            _missing.Remove(seq, seq);
            _rejected.Add(seq, seq);
        }
    }

    /// <summary>An <c>events.lost</c>: the unaccounted seqs of the range are gone for good.</summary>
    public void MarkLost(long from, long to)
    {
        from = Math.Max(from, 1);
        if (from > to)
        {
            return;
        }

        Extend(to);
        foreach (var r in _missing.Intersect(from, to))
        {
            _missing.Remove(r.From, r.To);
            _lost.Add(r.From, r.To);
        }
    }

    // Everything between the horizon and `to` becomes missing until something accounts for it.
    private void Extend(long to)
    {
        if (to > Horizon)
        {
            _missing.Add(Horizon + 1, to);
            Horizon = to;
        }
    }

    private static SeqIntervals Build(List<SeqRange>? ranges)
    {
        var set = new SeqIntervals();
        foreach (var r in ranges ?? [])
        {
            set.Add(r.From, r.To);
        }

        return set;
    }
}
