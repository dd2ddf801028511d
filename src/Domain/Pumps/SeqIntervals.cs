using PumpFleet.Contracts.Views;

namespace PumpFleet.Domain.Pumps;

/// <summary>
/// A set of seqs kept as sorted, disjoint, non-adjacent inclusive ranges in a balanced tree: membership, insertion
/// and removal cost O(log n) in the number of ranges (plus the ranges an operation touches), so a pump with
/// thousands of gaps costs no more per event than one with none.
/// </summary>
public sealed class SeqIntervals
{
    // Ordered by From only: the ranges are disjoint, so From identifies a range.
    private static readonly Comparer<Range> ByFrom = Comparer<Range>.Create((a, b) => a.From.CompareTo(b.From));

    // Allocated by the first Add: a pump's ledger keeps three of these (missing, rejected, lost) and almost every pump
    // has none of either, while an empty SortedSet costs 48 bytes (issue 15, memory per active pump).
    private SortedSet<Range>? _ranges;

    private SortedSet<Range> Set => _ranges ??= new(ByFrom);

    /// <summary>Number of ranges.</summary>
    public int Count => _ranges?.Count ?? 0;

    /// <summary>The lowest range, or null when empty.</summary>
    public SeqRange? First => _ranges is not { Count: > 0 } set ? null : new SeqRange(set.Min.From, set.Min.To);

    /// <summary>All ranges, ascending.</summary>
    public IEnumerable<SeqRange> Ranges => _ranges is null ? [] : _ranges.Select(r => new SeqRange(r.From, r.To));

    /// <summary>True when <paramref name="seq"/> is in the set.</summary>
    public bool Contains(long seq) => Floor(seq) is { } r && r.To >= seq;

    /// <summary>Adds <paramref name="from"/>..<paramref name="to"/>, merging with overlapping or adjacent ranges.</summary>
    public void Add(long from, long to)
    {
        if (from > to)
        {
            return;
        }

        // Everything that overlaps or touches [from - 1, to + 1] is merged into one range.
        var lo = from == long.MinValue ? from : from - 1;
        var hi = to == long.MaxValue ? to : to + 1;
        var merged = new Range(from, to);
        var set = Set;
        foreach (var r in Touching(lo, hi))
        {
            set.Remove(r);
            merged = new Range(Math.Min(merged.From, r.From), Math.Max(merged.To, r.To));
        }

        set.Add(merged);
    }

    /// <summary>Removes <paramref name="from"/>..<paramref name="to"/>, splitting ranges that stick out on either side.</summary>
    public void Remove(long from, long to)
    {
        if (from > to || _ranges is not { } set)
        {
            return;
        }

        foreach (var r in Touching(from, to))
        {
            set.Remove(r);
            if (r.From < from)
            {
                set.Add(new Range(r.From, from - 1));
            }

            if (r.To > to)
            {
                set.Add(new Range(to + 1, r.To));
            }
        }
    }

    /// <summary>The parts of the set inside <paramref name="from"/>..<paramref name="to"/>, ascending.</summary>
    public List<SeqRange> Intersect(long from, long to) =>
        from > to ? [] : [.. Touching(from, to).Select(r => new SeqRange(Math.Max(r.From, from), Math.Min(r.To, to)))];

    /// <summary>The first <paramref name="count"/> ranges, ascending.</summary>
    public List<SeqRange> Take(int count) => _ranges is null ? [] : [.. _ranges.Take(count).Select(r => new SeqRange(r.From, r.To))];

    /// <summary>The range with the greatest From ≤ <paramref name="seq"/>, or null.</summary>
    private Range? Floor(long seq)
    {
        if (_ranges is not { Count: > 0 } set || set.Min.From > seq)
        {
            return null;
        }

        // A view's Max walks down the tree within the bounds: O(log n), no copy.
        return set.GetViewBetween(set.Min, new Range(seq, seq)).Max;
    }

    /// <summary>The ranges that intersect [lo, hi], materialised so the caller may modify the set.</summary>
    private List<Range> Touching(long lo, long hi)
    {
        var start = Floor(lo) is { } f && f.To >= lo ? f.From : lo;
        if (_ranges is not { Count: > 0 } set || start > set.Max.From || hi < start)
        {
            return [];
        }

        return [.. set.GetViewBetween(new Range(start, start), new Range(hi, hi))];
    }

    private readonly record struct Range(long From, long To);
}
