using System.ComponentModel.DataAnnotations;

namespace PumpFleet.Streaming;

/// <summary>Options of the log stream provider (section <c>Streaming</c>), validated on start.</summary>
public sealed class LogStreamOptions : IValidatableObject
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
    [Range(1, 10_000)]
    public int PageSize { get; set; } = 500;

    /// <summary>A receiver saves its checkpoint at most this often, and on shutdown (default 1 s).</summary>
    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Deliveries a queue holds that are not yet delivered to every consumer before it stops reading (back-pressure; default 8192).</summary>
    [Range(16, 1_000_000)]
    public int MaxUndelivered { get; set; } = 8192;

    /// <summary>Delivered items each queue keeps so that a consumer can subscribe from an older token (the rewind window; default 16384).</summary>
    [Range(0, 10_000_000)]
    public int RewindWindow { get; set; } = 16384;

    /// <inheritdoc />
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (AgentPeriod <= TimeSpan.Zero || AgentPeriod > TimeSpan.FromSeconds(10))
        {
            yield return new ValidationResult("Streaming:AgentPeriod must be between 0 and 10 s.", [nameof(AgentPeriod)]);
        }

        if (PollInterval < AgentPeriod || PollInterval > TimeSpan.FromMinutes(5))
        {
            yield return new ValidationResult("Streaming:PollInterval must be at least AgentPeriod and at most 5 min.", [nameof(PollInterval)]);
        }

        if (CheckpointInterval < TimeSpan.Zero || CheckpointInterval > TimeSpan.FromMinutes(5))
        {
            yield return new ValidationResult("Streaming:CheckpointInterval must be between 0 and 5 min.", [nameof(CheckpointInterval)]);
        }
    }
}
