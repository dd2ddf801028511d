using Microsoft.Extensions.Options;
using Orleans.Runtime.Providers;

namespace PumpFleet.Streaming;

/// <summary>
/// How long a pulling agent of the log provider waits before it retries a failed partition read: doubling from
/// <see cref="LogStreamOptions.ReadRetryDelay"/> to <see cref="LogStreamOptions.ReadRetryMaxDelay"/>, with a fifth of
/// jitter so that sixteen receivers do not retry in step against a database that is coming back.
/// </summary>
internal sealed class LogReadRetryBackoff(IOptions<LogStreamOptions> options) : IQueueReaderBackoffProvider
{
    public TimeSpan Next(int attempt)
    {
        var o = options.Value;
        return JitteredBackoff.Next(attempt, o.ReadRetryDelay, o.ReadRetryMaxDelay, Random.Shared);
    }
}
