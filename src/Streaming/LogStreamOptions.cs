namespace PumpFleet.Streaming;

/// <summary>Options of the log stream provider (section <c>Streaming</c>), validated on start by <see cref="LogStreamOptionsValidator"/>.</summary>
public sealed class LogStreamOptions
{
    /// <summary>Configuration section.</summary>
    public const string SectionName = "Streaming";

    /// <summary>Register the provider in the silo (default true).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>How often each queue's pulling agent asks its receiver; the receiver only queries when woken or due (default 50 ms).</summary>
    public TimeSpan AgentPeriod { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Fallback: a receiver reads its partition at least this often without a notification (default 1 s).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Events per partition read (default 500).</summary>
    public int PageSize { get; set; } = 500;

    /// <summary>A receiver saves its checkpoint at most this often, and on shutdown (default 1 s).</summary>
    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Deliveries a queue holds that are not yet delivered to every consumer before it stops reading (back-pressure; default 8192).</summary>
    public int MaxUndelivered { get; set; } = 8192;

    /// <summary>Delivered items each queue keeps so that a consumer can subscribe from an older token (the rewind window; default 16384).</summary>
    public int RewindWindow { get; set; } = 16384;
}
