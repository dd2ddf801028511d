using Microsoft.Extensions.Options;

namespace PumpFleet.EventStore.Log;

/// <summary>The shared tail of each log partition (section <c>EventStore:TailCache</c>; <see cref="LogTailCache"/>).</summary>
public sealed class LogTailCacheOptions
{
    /// <summary>Configuration section.</summary>
    public const string SectionName = "EventStore:TailCache";

    /// <summary>Serve the log partition reads of the process (log stream receivers, projections, tallies) from one shared read. Default: true.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// How old a read that reached the partition's end may be and still answer another reader that reaches the end
    /// (0–1 s). That reader sees what was committed up to then and the rest on its next read. The log stream's
    /// receivers never take such an answer (<see cref="ILogPartitionReader.ReadPartitionLatestAsync"/>): they read
    /// a busy partition every <c>Streaming:MinReadInterval</c> (100 ms) and their reads serve the projections, which
    /// read each partition once a second. Default: 250 ms, so a projection nearly always finds a receiver's read.
    /// </summary>
    public TimeSpan MaxAge { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// Events kept per partition (256–100,000), oldest dropped first. Default: 2,048 — at 5,000 events/s about six
    /// seconds of each of the 16 partitions, more than the projections' one-second poll needs, ~20 MB at most.
    /// </summary>
    public int MaxEventsPerPartition { get; set; } = 2048;
}

/// <summary>Checks <see cref="LogTailCacheOptions"/> at start-up (registered with <c>ValidateOnStart</c>).</summary>
public sealed class LogTailCacheOptionsValidator : IValidateOptions<LogTailCacheOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, LogTailCacheOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        var errors = new List<string>();
        if (o.MaxAge < TimeSpan.Zero || o.MaxAge > TimeSpan.FromSeconds(1))
        {
            errors.Add($"{LogTailCacheOptions.SectionName}:MaxAge must be between 0 and 1 s, not {o.MaxAge}.");
        }

        if (o.MaxEventsPerPartition is < 256 or > 100_000)
        {
            errors.Add($"{LogTailCacheOptions.SectionName}:MaxEventsPerPartition must be between 256 and 100,000, not {o.MaxEventsPerPartition}.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
