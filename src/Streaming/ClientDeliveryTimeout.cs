using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;

namespace PumpFleet.Streaming;

/// <summary>
/// Bounds how long a pulling agent of the log provider waits for an Orleans <em>client</em> (the dashboard, the
/// fault benchmark's counter) to answer a delivery: <see cref="LogStreamOptions.ClientDeliveryTimeout"/> instead of the
/// silo's response timeout (30 s).
/// </summary>
/// <remarks>
/// Why: a delivery to a client goes through a gateway, and its callback names no target silo, so when the silo whose
/// gateway carried it is SIGKILLed, Orleans' break of the calls to the dead silo does not reach it; the request or its
/// answer is simply lost, and the agent waited the whole response timeout before it retried. That one consumer cursor
/// stood still for up to 30 s (the full fault form's "23–28 s after PostgreSQL was back" was this, left over from the
/// SIGKILL seconds earlier: docs/benchmarks.md). The call gets a cancellation token that fires after the bound; the
/// cancelled call fails, and the agent retries the same batch after <see cref="LogStreamOptions.DeliveryRetryDelay"/>
/// (at least once: a client that was only slow sees the batch again and dedupes by stream version). Calls to grains
/// are left alone: the break on a silo's death already covers them, and a grain consumer may take long legitimately.
/// </remarks>
internal sealed partial class ClientDeliveryTimeout(IOptions<LogStreamOptions> options, ILogger<ClientDeliveryTimeout> logger) : IOutgoingGrainCallFilter
{
    // IStreamConsumerExtension is internal to Orleans: the call is recognised by its method name and its stream argument.
    private const string DeliverBatch = "DeliverBatch";

    public Task Invoke(IOutgoingGrainCallContext context)
    {
        // Cheap tests first: this filter sees every outgoing call of the silo.
        var timeout = options.Value.ClientDeliveryTimeout;
        if (timeout <= TimeSpan.Zero || !context.TargetId.IsClient() || context.MethodName != DeliverBatch)
        {
            return context.Invoke();
        }

        var request = context.Request;
        var tokenIndex = -1;
        var ours = false;
        for (var i = 0; i < request.GetArgumentCount(); i++)
        {
            switch (request.GetArgument(i))
            {
                case QualifiedStreamId stream:
                    ours = stream.ProviderName == LogStreams.ProviderName;
                    break;
                case CancellationToken:
                    tokenIndex = i;
                    break;
            }
        }

        return ours && tokenIndex >= 0 ? InvokeBoundedAsync(context, tokenIndex, timeout) : context.Invoke();
    }

    private async Task InvokeBoundedAsync(IOutgoingGrainCallContext context, int tokenIndex, TimeSpan timeout)
    {
        var given = (CancellationToken)context.Request.GetArgument(tokenIndex)!;
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(given);
        bound.CancelAfter(timeout);
        context.Request.SetArgument(tokenIndex, bound.Token);
        try
        {
            await context.Invoke();
        }
        catch (OperationCanceledException) when (bound.IsCancellationRequested && !given.IsCancellationRequested)
        {
            LogAbandoned(logger, context.TargetId.ToString(), timeout.TotalMilliseconds);
            throw new TimeoutException($"The client {context.TargetId} did not answer a log stream delivery within {timeout.TotalMilliseconds:F0} ms.");
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Log stream delivery to client {Client} not answered within {TimeoutMs} ms: abandoned, the agent retries it")]
    private static partial void LogAbandoned(ILogger logger, string client, double timeoutMs);
}
