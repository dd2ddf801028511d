using Microsoft.Extensions.Logging;

namespace PumpFleet.Simulator.Transport;

public sealed partial class FleetSimulator
{
    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Information,
            Message = "Simulating {Pumps} pumps on {Hubs} hubs against {Broker}, {Start:u} to {End:u}, speed {Speed} (0 = as fast as possible)")]
        public static partial void Starting(ILogger logger, int pumps, int hubs, string broker, DateTimeOffset start, DateTimeOffset end, double speed);

        [LoggerMessage(Level = LogLevel.Information,
            Message = "sim {SimTime:u} | {Rate} events/s | published {Events} | acks {Acks} | rejects {Rejects} | backlog {Backlog} | hubs online {Online}/{Hubs}")]
        public static partial void Progress(ILogger logger, DateTimeOffset simTime, double rate, long events, long acks, long rejects, long backlog, int online, int hubs);

        [LoggerMessage(Level = LogLevel.Warning, Message = "Drain timed out with {Backlog} events still unacked")]
        public static partial void DrainTimedOut(ILogger logger, long backlog);

        [LoggerMessage(Level = LogLevel.Information,
            Message = "Done: generated {Generated}, published {Published} (resent {Resent}), acks {Acks}, rejects {Rejects}, unacked {Unacked}, faults {Faults}")]
        public static partial void Finished(ILogger logger, long generated, long published, long resent, long acks, long rejects, long unacked, int faults);
    }
}
