using Microsoft.Extensions.Options;

namespace PumpFleet.Streaming;

/// <summary>Options of the log stream provider (section <c>Streaming</c>), validated on start.</summary>
public sealed class LogStreamOptions
{
    /// <summary>Configuration section.</summary>
    public const string SectionName = "Streaming";

    /// <summary>Register the provider in the silo (default true).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>How often each queue's pulling agent asks its receiver; the receiver only queries when woken or due (default 50 ms).</summary>
    public TimeSpan AgentPeriod { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// Wake receivers by <c>LISTEN pf_log</c> (default true). False: poll every <see cref="PollInterval"/> only, for a
    /// connection path without session state (PgBouncer in transaction mode cannot LISTEN); also the benchmark's baseline.
    /// </summary>
    public bool Notifications { get; set; } = true;

    /// <summary>
    /// Also deliver each pump's events on the pump's own stream <c>("pumpfleet.log", serial)</c> (default false: only the
    /// partition streams and the live streams). Off by default because nothing in the platform subscribes to a pump's
    /// stream and each one costs: the first time a queue delivers on a stream, Orleans registers the queue as its
    /// producer with that stream's pub-sub rendezvous grain (an activation and a read and a write of the pub-sub store
    /// in PostgreSQL), so a million pumps meant a million rendezvous grains and an exhausted connection pool
    /// (docs/benchmarks.md, the million-pump run). Turn it on for a consumer that subscribes to single pumps.
    /// </summary>
    public bool PumpStreams { get; set; }

    /// <summary>Fallback: a receiver reads its partition at least this often without a notification (default 1 s).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// A receiver reads its partition again no sooner than this after its last read, unless that read filled a page
    /// (catching up): a notification after a quiet spell is read at the agent's next turn as before, but under load the
    /// notifications of many commits are coalesced into one larger read, instead of a small page read per agent turn
    /// and partition (16 × 20 reads a second at the 50 ms agent period, each run over every attached month of the
    /// event log). Zero: no floor beyond <see cref="AgentPeriod"/> (before 2026-11-30). Default 100 ms
    /// (docs/benchmarks.md "Fewer, larger log reads").
    /// </summary>
    public TimeSpan MinReadInterval { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// <see cref="MinReadInterval"/> applies only while the partition carried at least this many events a second over
    /// its last full second of reads (default 100, about 1,600 events/s over the 16 partitions): below it every
    /// notification is read at the agent's next turn, as without a floor, so a quiet or lightly loaded platform keeps its
    /// commit → delivery latency (StreamBench at 200 events/s: p50 / p99 30 / 93 ms without the floor, 42 / 140 ms with
    /// it unconditional). Zero: the floor always applies.
    /// </summary>
    public int CoalesceAboveEventsPerSecond { get; set; } = 100;

    /// <summary>
    /// After a failed read (PostgreSQL restarting or unreachable), a receiver's pulling agent waits this long before the
    /// first retry, doubling up to <see cref="ReadRetryMaxDelay"/> (default 500 ms). Orleans' own default waits 10–20 s,
    /// which after a short database outage kept every partition, and so the live dashboard and the cohort signals,
    /// stalled for 10 s (the delivery-under-faults test: committed → delivered 10.4 s after the restart).
    /// </summary>
    public TimeSpan ReadRetryDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Longest wait between read retries while the database stays unreachable (default 5 s).</summary>
    public TimeSpan ReadRetryMaxDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// After a failed delivery to a consumer (or a failed producer registration with the stream's pub-sub grain), the
    /// pulling agent retries after this long, doubling up to <see cref="DeliveryRetryMaxDelay"/> (default 250 ms), until
    /// Orleans' <c>MaxEventDeliveryTime</c> (1 min) gives up and the failure handler logs and counts it. Orleans' default
    /// doubles from 1 s to 30 s.
    /// </summary>
    public TimeSpan DeliveryRetryDelay { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Longest wait between delivery retries (default 5 s).</summary>
    public TimeSpan DeliveryRetryMaxDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a pulling agent waits for an Orleans client (a dashboard process) to answer a delivery before it
    /// abandons the call and retries it (default 5 s; zero: the silo's response timeout, 30 s, as before 2026-11-30). A
    /// delivery in flight through a gateway silo that is SIGKILLed is lost without an error, and that consumer stood still
    /// for the whole response timeout (docs/benchmarks.md, "Placing the 23–28 s"). Calls to grain consumers keep the silo's
    /// response timeout.
    /// </summary>
    public TimeSpan ClientDeliveryTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Events per partition read (default 500).</summary>
    public int PageSize { get; set; } = 500;

    /// <summary>A receiver saves its checkpoint at most this often, and on shutdown (default 1 s).</summary>
    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Deliveries a queue holds that are not yet delivered to every consumer before it stops reading (back-pressure; default 8192).</summary>
    public int MaxUndelivered { get; set; } = 8192;

    /// <summary>Delivered items each queue keeps so that a consumer can subscribe from an older token (the rewind window; default 16384).</summary>
    public int RewindWindow { get; set; } = 16384;
}

/// <summary>Checks <see cref="LogStreamOptions"/> at start-up (registered with <c>ValidateOnStart</c>).</summary>
public sealed class LogStreamOptionsValidator : IValidateOptions<LogStreamOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, LogStreamOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<string>();
        if (options.AgentPeriod <= TimeSpan.Zero || options.AgentPeriod > TimeSpan.FromSeconds(10))
        {
            errors.Add($"Streaming:AgentPeriod must be above 0 and at most 10 s, not {options.AgentPeriod}.");
        }

        if (options.PollInterval < options.AgentPeriod || options.PollInterval > TimeSpan.FromMinutes(5))
        {
            errors.Add($"Streaming:PollInterval must be at least AgentPeriod and at most 5 min, not {options.PollInterval}.");
        }

        if (options.MinReadInterval < TimeSpan.Zero || options.MinReadInterval > TimeSpan.FromSeconds(10))
        {
            errors.Add($"Streaming:MinReadInterval must be between 0 and 10 s, not {options.MinReadInterval}.");
        }

        if (options.CoalesceAboveEventsPerSecond is < 0 or > 1_000_000)
        {
            errors.Add($"Streaming:CoalesceAboveEventsPerSecond must be between 0 and 1,000,000, not {options.CoalesceAboveEventsPerSecond}.");
        }

        if (options.CheckpointInterval < TimeSpan.Zero || options.CheckpointInterval > TimeSpan.FromMinutes(5))
        {
            errors.Add($"Streaming:CheckpointInterval must be between 0 and 5 min, not {options.CheckpointInterval}.");
        }

        if (options.ReadRetryDelay <= TimeSpan.Zero || options.ReadRetryDelay > options.ReadRetryMaxDelay)
        {
            errors.Add($"Streaming:ReadRetryDelay must be above 0 and at most ReadRetryMaxDelay, not {options.ReadRetryDelay}.");
        }

        if (options.ReadRetryMaxDelay > TimeSpan.FromMinutes(5))
        {
            errors.Add($"Streaming:ReadRetryMaxDelay must be at most 5 min, not {options.ReadRetryMaxDelay}.");
        }

        if (options.DeliveryRetryDelay <= TimeSpan.Zero || options.DeliveryRetryDelay > options.DeliveryRetryMaxDelay)
        {
            errors.Add($"Streaming:DeliveryRetryDelay must be above 0 and at most DeliveryRetryMaxDelay, not {options.DeliveryRetryDelay}.");
        }

        if (options.DeliveryRetryMaxDelay > TimeSpan.FromMinutes(1))
        {
            errors.Add($"Streaming:DeliveryRetryMaxDelay must be at most 1 min (Orleans gives a delivery up after MaxEventDeliveryTime, 1 min), not {options.DeliveryRetryMaxDelay}.");
        }

        if (options.ClientDeliveryTimeout < TimeSpan.Zero || options.ClientDeliveryTimeout > TimeSpan.FromMinutes(5))
        {
            errors.Add($"Streaming:ClientDeliveryTimeout must be between 0 (off) and 5 min, not {options.ClientDeliveryTimeout}.");
        }

        if (options.PageSize is < 1 or > 10_000)
        {
            errors.Add($"Streaming:PageSize must be between 1 and 10,000, not {options.PageSize}.");
        }

        if (options.MaxUndelivered is < 16 or > 1_000_000)
        {
            errors.Add($"Streaming:MaxUndelivered must be between 16 and 1,000,000, not {options.MaxUndelivered}.");
        }

        if (options.RewindWindow is < 0 or > 10_000_000)
        {
            errors.Add($"Streaming:RewindWindow must be between 0 and 10,000,000, not {options.RewindWindow}.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
