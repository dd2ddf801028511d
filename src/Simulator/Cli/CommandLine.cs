using System.Globalization;
using Microsoft.Extensions.Logging;

namespace PumpFleet.Simulator.Cli;

/// <summary>What the command line asked for.</summary>
/// <param name="Options">Simulator options.</param>
/// <param name="Output">When set, generate without MQTT and write batches as NDJSON here (<c>-</c> = stdout).</param>
/// <param name="LogLevel">Minimum console log level.</param>
/// <param name="Help">Print help and exit.</param>
internal sealed record CommandLine(SimulatorOptions Options, string? Output, LogLevel LogLevel, bool Help);

/// <summary>Parses <c>--name value</c> options; throws <see cref="FormatException"/> with a message meant for the user.</summary>
internal static class CommandLineParser
{
    public const string HelpText = """
        PumpFleet fleet simulator: implanted pumps on bedside hubs speaking hub protocol v1 over MQTT.

        Usage: dotnet run --project src/Simulator -- [options]

          --broker <host:port>          MQTT broker (default 127.0.0.1:1883)
          --pumps <n>                   number of pumps (default 100)
          --seed <n>                    fleet seed; same seed, same events (default 42)
          --start <RFC 3339>            simulated start (default 2026-01-01T00:00:00Z)
          --duration <span>             simulated duration, e.g. 30d, 12h, 90m (default 30d)
          --speed <x|max>               simulated seconds per real second; max = as fast as possible (default 86400)
          --reporting-interval <span>   basal dose.delivered interval (default 1h)
          --batch-interval <span>       how often hubs send (default 60m)
          --level-interval <span>       reservoir.level interval (default 6h)
          --max-pumps-per-hub <n>       1-16 (default 4)
          --sensor-fraction <0..1>      pumps with a fill sensor, reporting measured levels (default 0.3)
          --trial-fraction <0..1>       pumps starting in a trial phase (default 0.05)
          --offline-rate <x>            ordinary hub outages per hub-day (default 0.05)
          --offline-mean <span>         mean outage length (default 6h)
          --clock-reset-rate <x>        pump clock resets per pump-year (default 0.2)
          --fault-rate-multiplier <x>   multiplies every fault rate (default 1)
          --faults <file>               fault scenario JSON (see docs/simulator.md)
          --ground-truth <file>         write injected faults as NDJSON
          --fleet-secret <s>            hub password = hex(HMAC-SHA256(fleet secret, hub id)) (default dev)
          --serial-prefix <s>           prefix of serials and hub ids (default SIM)
          --progress-interval <span>    real time between progress lines (default 5s)
          --drain-timeout <span>        real time to wait for final acks (default 30s)
          --output <file|->             no MQTT: write every batch as NDJSON {"at","hubId","serial","topic","payload"}
          --log-level <level>           Trace, Debug, Information, Warning, Error (default Information)
          --help                        this text

        Exit codes: 0 done, 1 run failed (e.g. broker unreachable), 2 bad options.
        """;

    public static CommandLine Parse(IReadOnlyList<string> args)
    {
        var o = new SimulatorOptions();
        string? output = null;
        var level = LogLevel.Information;
        for (var i = 0; i < args.Count; i++)
        {
            var name = args[i];
            if (name is "--help" or "-h" or "-?")
            {
                return new CommandLine(o, null, level, true);
            }

            if (!name.StartsWith("--", StringComparison.Ordinal))
            {
                throw new FormatException($"unexpected argument '{name}'");
            }

            if (i + 1 >= args.Count)
            {
                throw new FormatException($"{name} needs a value");
            }

            var v = args[++i];
            switch (name)
            {
                case "--broker": o.Broker = v; break;
                case "--pumps": o.Pumps = Int(name, v); break;
                case "--seed": o.Seed = Int(name, v); break;
                case "--start": o.Start = Time(name, v); break;
                case "--duration": o.Duration = Span(name, v); break;
                case "--speed": o.Speed = v == "max" ? 0 : Double(name, v); break;
                case "--reporting-interval": o.ReportingInterval = Span(name, v); break;
                case "--batch-interval": o.BatchInterval = Span(name, v); break;
                case "--level-interval": o.LevelInterval = Span(name, v); break;
                case "--max-pumps-per-hub": o.MaxPumpsPerHub = Int(name, v); break;
                case "--sensor-fraction": o.SensorFraction = Double(name, v); break;
                case "--trial-fraction": o.TrialFraction = Double(name, v); break;
                case "--offline-rate": o.OfflineRatePerHubDay = Double(name, v); break;
                case "--offline-mean": o.OfflineMeanDuration = Span(name, v); break;
                case "--clock-reset-rate": o.ClockResetRatePerPumpYear = Double(name, v); break;
                case "--fault-rate-multiplier": o.FaultRateMultiplier = Double(name, v); break;
                case "--faults": o.FaultsFile = v; break;
                case "--ground-truth": o.GroundTruthFile = v; break;
                case "--fleet-secret": o.FleetSecret = v; break;
                case "--serial-prefix": o.SerialPrefix = v; break;
                case "--progress-interval": o.ProgressInterval = Span(name, v); break;
                case "--drain-timeout": o.DrainTimeout = Span(name, v); break;
                case "--output": output = v; break;
                case "--log-level":
                    level = Enum.TryParse<LogLevel>(v, ignoreCase: true, out var l) && Enum.IsDefined(l)
                        ? l
                        : throw new FormatException($"--log-level: '{v}' is not a log level");
                    break;
                default: throw new FormatException($"unknown option '{name}' (see --help)");
            }
        }

        var errors = o.Validate();
        if (errors.Count > 0)
        {
            throw new FormatException(string.Join(Environment.NewLine, errors));
        }

        return new CommandLine(o, output, level, false);
    }

    private static int Int(string name, string v) =>
        int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? n : throw new FormatException($"{name}: '{v}' is not an integer");

    private static double Double(string name, string v) =>
        double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && double.IsFinite(n)
            ? n
            : throw new FormatException($"{name}: '{v}' is not a number");

    private static DateTimeOffset Time(string name, string v) =>
        DateTimeOffset.TryParse(v, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t)
            ? t
            : throw new FormatException($"{name}: '{v}' is not an RFC 3339 time");

    /// <summary>Spans as <c>30d</c>, <c>12h</c>, <c>90m</c>, <c>45s</c>, <c>500ms</c>, or <c>hh:mm:ss</c>.</summary>
    internal static TimeSpan Span(string name, string v)
    {
        var units = new (string Suffix, double Seconds)[] { ("ms", 0.001), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1) };
        foreach (var (suffix, seconds) in units)
        {
            if (v.EndsWith(suffix, StringComparison.Ordinal)
                && double.TryParse(v.AsSpan(0, v.Length - suffix.Length), NumberStyles.Float, CultureInfo.InvariantCulture, out var n)
                && double.IsFinite(n) && n >= 0)
            {
                return TimeSpan.FromSeconds(n * seconds);
            }
        }

        return TimeSpan.TryParse(v, CultureInfo.InvariantCulture, out var span)
            ? span
            : throw new FormatException($"{name}: '{v}' is not a duration (use e.g. 30d, 12h, 90m, 45s)");
    }
}
