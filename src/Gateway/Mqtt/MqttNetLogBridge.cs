using Microsoft.Extensions.Logging;
using MQTTnet.Diagnostics.Logger;
using MQTTnet.Exceptions;
using PumpFleet.Gateway.Ingest;

namespace PumpFleet.Gateway.Mqtt;

/// <summary>
/// MQTTnet's log sink for the embedded broker. MQTTnet raises no event when it drops a client for a malformed
/// packet or a protocol violation; it only logs the <see cref="MqttProtocolViolationException"/> (while reading the
/// CONNECT, or in the client's receive loop, which then ends the connection). This is where those become a counted
/// (<c>protocol-violation</c>) and logged disconnect. MQTTnet's other messages go to the log at Debug (its errors
/// at Warning), so its chatter does not flood the gateway's log.
/// </summary>
internal sealed partial class MqttNetLogBridge(GatewayInstruments instruments, ILogger logger) : IMqttNetLogger
{
    /// <inheritdoc />
    public bool IsEnabled => true;

    /// <inheritdoc />
    public void Publish(MqttNetLogLevel level, string source, string message, object[] parameters, Exception exception)
    {
        if (level == MqttNetLogLevel.Verbose && exception is null)
        {
            return; // a line per packet: not worth formatting
        }

        if (exception is MqttProtocolViolationException || exception?.InnerException is MqttProtocolViolationException)
        {
            instruments.OnDisconnect(DisconnectReasons.ProtocolViolation);
            LogProtocolViolation(Format(message, parameters), exception.GetBaseException().Message);
            return;
        }

        if (level == MqttNetLogLevel.Error && logger.IsEnabled(LogLevel.Warning))
        {
            LogLibraryError(source, Format(message, parameters), exception);
        }
        else if (logger.IsEnabled(LogLevel.Debug))
        {
            LogLibrary(source, Format(message, parameters));
        }
    }

    private static string Format(string message, object[]? parameters)
    {
        if (parameters is not { Length: > 0 })
        {
            return message;
        }

        try
        {
            return string.Format(System.Globalization.CultureInfo.InvariantCulture, message, parameters);
        }
        catch (FormatException)
        {
            return message;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT connection closed by the broker for a protocol violation: {Context}: {Detail}")]
    private partial void LogProtocolViolation(string context, string detail);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTTnet {Source}: {Text}")]
    private partial void LogLibraryError(string source, string text, Exception? e);

    [LoggerMessage(Level = LogLevel.Debug, Message = "MQTTnet {Source}: {Text}")]
    private partial void LogLibrary(string source, string text);
}
