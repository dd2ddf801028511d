using Microsoft.Extensions.Logging;

namespace PumpFleet.Simulator.Transport;

public sealed partial class HubClient
{
    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Warning, Message = "Hub {HubId}: broker refused the connection: {Code}")]
        public static partial void ConnectRefused(ILogger logger, string hubId, string code);

        // A busy or rate-limiting broker asks the hub to come back later; many hubs starting at once are told so
        // routinely (the gateway paces unproven logins), so it is not a warning unless it keeps happening.
        [LoggerMessage(Level = LogLevel.Information, Message = "Hub {HubId}: broker busy ({Code}); retrying")]
        public static partial void ConnectDeferred(ILogger logger, string hubId, string code);

        [LoggerMessage(Level = LogLevel.Debug, Message = "Hub {HubId}: connect failed: {Reason}")]
        public static partial void ConnectFailed(ILogger logger, string hubId, string reason);

        [LoggerMessage(Level = LogLevel.Information, Message = "Hub {HubId}: connection lost ({Reason}); reconnecting")]
        public static partial void ConnectionLost(ILogger logger, string hubId, string reason);

        [LoggerMessage(Level = LogLevel.Information, Message = "Hub {HubId}: reconnected; resending above committedSeq")]
        public static partial void Reconnected(ILogger logger, string hubId);

        [LoggerMessage(Level = LogLevel.Debug, Message = "Hub {HubId}: simulated outage starts at {SimTime}")]
        public static partial void GoingOffline(ILogger logger, string hubId, DateTimeOffset simTime);

        [LoggerMessage(Level = LogLevel.Debug, Message = "Hub {HubId}: simulated outage ends at {SimTime}")]
        public static partial void ComingOnline(ILogger logger, string hubId, DateTimeOffset simTime);

        [LoggerMessage(Level = LogLevel.Warning, Message = "Hub {HubId}: publish to {Topic} refused: {Code}")]
        public static partial void PublishRefused(ILogger logger, string hubId, string topic, string code);

        [LoggerMessage(Level = LogLevel.Debug, Message = "Hub {HubId}: publish to {Topic} failed: {Reason}")]
        public static partial void PublishFailed(ILogger logger, string hubId, string topic, string reason);

        [LoggerMessage(Level = LogLevel.Warning, Message = "Hub {HubId}: pump {Serial} got a reject: {Payload}")]
        public static partial void Rejected(ILogger logger, string hubId, string serial, string payload);

        [LoggerMessage(Level = LogLevel.Error, Message = "Hub {HubId}: worker failed")]
        public static partial void WorkerFailed(ILogger logger, string hubId, Exception exception);

        [LoggerMessage(Level = LogLevel.Debug, Message = "Hub {HubId}: clean stop failed: {Reason}")]
        public static partial void StopFailed(ILogger logger, string hubId, string reason);
    }
}
