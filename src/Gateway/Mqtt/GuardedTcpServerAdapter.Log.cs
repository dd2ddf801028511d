using Microsoft.Extensions.Logging;

namespace PumpFleet.Gateway.Mqtt;

/// <summary>Log lines of <see cref="GuardedTcpServerAdapter"/>: every connection it closes or refuses is one of these.</summary>
internal sealed partial class GuardedTcpServerAdapter
{
    [LoggerMessage(Level = LogLevel.Warning, Message = "Connection of hub {HubId} from {Remote} closed: its packet announces {Announced} bytes, more than the limit of {Max}; the body was not read")]
    private partial void LogPacketTooLarge(string hubId, string remote, long announced, int max);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Connection from {Remote} closed: malformed packet (remaining length over four bytes)")]
    private partial void LogMalformedLength(string remote);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Connection from {Remote} refused: {Pending} connections already wait for authentication ({How})")]
    private partial void LogTooManyPending(string remote, int pending, string how);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Connection from {Remote} closed: not authenticated within {Timeout}")]
    private partial void LogConnectTimeout(string remote, TimeSpan timeout);

    [LoggerMessage(Level = LogLevel.Error, Message = "Accepting MQTT connections failed; retrying")]
    private partial void LogAcceptFailed(Exception e);

    [LoggerMessage(Level = LogLevel.Error, Message = "Connection from {Remote} failed unexpectedly")]
    private partial void LogConnectionFailed(string remote, Exception e);
}
