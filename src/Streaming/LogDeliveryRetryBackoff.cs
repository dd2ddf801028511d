using Microsoft.Extensions.Options;
using Orleans.Runtime.Providers;

namespace PumpFleet.Streaming;

/// <summary>
/// How long a pulling agent of the log provider waits before it retries a failed delivery to a consumer, or a failed
/// producer registration with the stream's pub-sub grain: doubling from <see cref="LogStreamOptions.DeliveryRetryDelay"/>
/// to <see cref="LogStreamOptions.DeliveryRetryMaxDelay"/>, with a fifth of jitter. Orleans' default doubles from 1 s to
/// 30 s, so a consumer whose deliveries failed a few times while PostgreSQL was down (a cohort tally writing its count,
/// the pub-sub store) could wait up to 30 s after the database was back.
/// </summary>
internal sealed class LogDeliveryRetryBackoff(IOptions<LogStreamOptions> options) : IMessageDeliveryBackoffProvider
{
    public TimeSpan Next(int attempt)
    {
        var o = options.Value;
        return JitteredBackoff.Next(attempt, o.DeliveryRetryDelay, o.DeliveryRetryMaxDelay, Random.Shared);
    }
}
