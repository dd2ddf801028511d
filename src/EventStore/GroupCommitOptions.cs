using Microsoft.Extensions.Options;

namespace PumpFleet.EventStore;

/// <summary>
/// Group commit of concurrent appends to different streams (section <c>EventStore:GroupCommit</c>; docs/architecture.md
/// "Group commit"). Appends that arrive while a commit is in flight wait for the next one and share it.
/// </summary>
public sealed class GroupCommitOptions
{
    /// <summary>Configuration section.</summary>
    public const string SectionName = "EventStore:GroupCommit";

    /// <summary>Merge concurrent appends of different streams into one transaction. Default: true.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// Streams per transaction at most (1–60). Each takes a subtransaction id; PostgreSQL caches 64 per backend and
    /// slows every snapshot on the server beyond that. Default: 32.
    /// </summary>
    public int MaxStreams { get; set; } = 32;

    /// <summary>
    /// Transactions in flight at once (1–64; each holds a pooled connection): appends queue only while all of them
    /// are busy. Default: 4.
    /// </summary>
    public int Writers { get; set; } = 4;

    /// <summary>
    /// How long a writer waits after the first append of a group for more to arrive (0–50 ms). Zero groups only what
    /// queued during the previous commit, which adds no latency at low load. Default: 0.
    /// </summary>
    public TimeSpan Linger { get; set; } = TimeSpan.Zero;

    /// <summary>
    /// Append a group with one statement (migration 043: no subtransaction, one firing of the event table's statement
    /// triggers per group) and fall back to one subtransaction per stream (042) only for a group whose statement
    /// fails. False always takes the per-stream path (kept to measure the two against each other). Default: true.
    /// </summary>
    public bool SetBased { get; set; } = true;

    /// <summary>
    /// Send the log readers' NOTIFY after a set-based group's commit instead of inside its transaction (migration 044):
    /// PostgreSQL holds its notification-queue lock from a notifying transaction's pre-commit to its end, across the WAL
    /// flush, so notifying appends commit one after the other. False notifies inside the transaction. Default: false —
    /// on the quiet machine it carried 1.10× the single-event messages per second but cost batches of 10 two thirds of
    /// their saturation rate (11,767 against 18,398 events/s; PostgreSQL 1,228 against 672 µs of CPU per message), and
    /// batches of 10 are the load the latency goal is set for (docs/benchmarks.md, "the NOTIFY after the commit on the
    /// quiet machine"). Kept, tested, to measure again.
    /// </summary>
    public bool NotifyAfterCommit { get; set; }
}

/// <summary>Checks <see cref="GroupCommitOptions"/> at start-up (registered with <c>ValidateOnStart</c>).</summary>
public sealed class GroupCommitOptionsValidator : IValidateOptions<GroupCommitOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, GroupCommitOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        var errors = new List<string>();
        if (o.MaxStreams is < 1 or > 60)
        {
            errors.Add($"{GroupCommitOptions.SectionName}:MaxStreams must be between 1 and 60, not {o.MaxStreams}.");
        }

        if (o.Writers is < 1 or > 64)
        {
            errors.Add($"{GroupCommitOptions.SectionName}:Writers must be between 1 and 64, not {o.Writers}.");
        }

        if (o.Linger < TimeSpan.Zero || o.Linger > TimeSpan.FromMilliseconds(50))
        {
            errors.Add($"{GroupCommitOptions.SectionName}:Linger must be between 0 and 50 ms, not {o.Linger}.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
