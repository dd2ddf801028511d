using Microsoft.Extensions.Logging;
using Orleans.Runtime;
using Orleans.Streams;

namespace PumpFleet.Streaming;

/// <summary>
/// Called by the pulling agent when a consumer still fails after Orleans' delivery retries
/// (<c>MaxEventDeliveryTime</c>). The subscription is not faulted (the consumer keeps receiving later events) and the
/// event is not lost from the log: the failure is logged with its token and counted
/// (<c>pumpfleet.stream.delivery.failures</c>), and the consumer can re-read it from the store or resubscribe from the
/// token.
/// </summary>
internal sealed partial class LogDeliveryFailureHandler(LogStreamInstruments instruments, ILogger logger) : IStreamFailureHandler
{
    public bool ShouldFaultSubsriptionOnError => false;

    public Task OnDeliveryFailure(GuidId subscriptionId, string streamProviderName, StreamId streamIdentity, StreamSequenceToken? sequenceToken)
    {
        instruments.OnFailure(LogStreamInstruments.Delivery);
        LogDeliveryFailed(logger, streamIdentity.ToString(), sequenceToken?.ToString(), subscriptionId.ToString());
        return Task.CompletedTask;
    }

    public Task OnSubscriptionFailure(GuidId subscriptionId, string streamProviderName, StreamId streamIdentity, StreamSequenceToken? sequenceToken)
    {
        instruments.OnFailure(LogStreamInstruments.Subscription);
        LogSubscriptionFailed(logger, streamIdentity.ToString(), sequenceToken?.ToString(), subscriptionId.ToString());
        return Task.CompletedTask;
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Log stream {Stream}: delivery of {Token} to subscription {Subscription} failed after retries")]
    private static partial void LogDeliveryFailed(ILogger logger, string stream, string? token, string subscription);

    [LoggerMessage(Level = LogLevel.Error, Message = "Log stream {Stream}: subscription {Subscription} failed at {Token}")]
    private static partial void LogSubscriptionFailed(ILogger logger, string stream, string? token, string subscription);
}
