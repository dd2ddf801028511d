using System.Globalization;

namespace PumpFleet.Simulator;

/// <summary>Everything a simulation run needs. Validate with <see cref="Validate"/> before use.</summary>
public sealed class SimulatorOptions
{
    /// <summary>Configuration section for hosts that bind these options.</summary>
    public const string SectionName = "Simulator";

    /// <summary>MQTT broker as <c>host:port</c>. Default: <c>127.0.0.1:1883</c>.</summary>
    public string Broker { get; set; } = "127.0.0.1:1883";

    /// <summary>Number of pumps in the fleet. Default: 100.</summary>
    public int Pumps { get; set; } = 100;

    /// <summary>Fleet seed; every pump's and hub's random stream is derived from it. Default: 42.</summary>
    public int Seed { get; set; } = 42;

    /// <summary>Simulated start time (UTC). Default: 2026-01-01T00:00:00Z.</summary>
    public DateTimeOffset Start { get; set; } = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Simulated duration. Default: 30 days.</summary>
    public TimeSpan Duration { get; set; } = TimeSpan.FromDays(30);

    /// <summary>Simulated seconds per real second; 0 runs as fast as possible. Default: 86400 (a day per second).</summary>
    public double Speed { get; set; } = 86_400;

    /// <summary>
    /// Simulated time up to which this fleet's events are already stored (a restart against a kept database). The
    /// fleet is generated from <see cref="Start"/> as always (the same seed gives the same events), but unpaced up to
    /// this time: the hubs skip what the platform's retained acks already cover, so a restarted simulation reports
    /// new events at once instead of silently re-living the time it already sent. Null (default): paced from the start.
    /// </summary>
    public DateTimeOffset? ResumeAt { get; set; }

    /// <summary>Length of one basal <c>dose.delivered</c> interval. Default: 1 hour.</summary>
    public TimeSpan ReportingInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How often a hub sends what it has collected (never more often than the reporting interval). Default: 60 min.</summary>
    public TimeSpan BatchInterval { get; set; } = TimeSpan.FromMinutes(60);

    /// <summary>How often a pump reports its reservoir level. Default: 6 hours.</summary>
    public TimeSpan LevelInterval { get; set; } = TimeSpan.FromHours(6);

    /// <summary>Most pumps on one hub. Default: 4.</summary>
    public int MaxPumpsPerHub { get; set; } = 4;

    /// <summary>Fraction of pumps with a reservoir fill sensor (reporting <c>measured</c> levels). Default: 0.3.</summary>
    public double SensorFraction { get; set; } = 0.3;

    /// <summary>Fraction of pumps that start in a trial phase before implant. Default: 0.05.</summary>
    public double TrialFraction { get; set; } = 0.05;

    /// <summary>Ordinary hub outages per hub-day (network, power). Default: 0.05.</summary>
    public double OfflineRatePerHubDay { get; set; } = 0.05;

    /// <summary>Mean length of an ordinary hub outage. Default: 6 hours.</summary>
    public TimeSpan OfflineMeanDuration { get; set; } = TimeSpan.FromHours(6);

    /// <summary>Pump clock resets after power loss, per pump-year. Default: 0.2.</summary>
    public double ClockResetRatePerPumpYear { get; set; } = 0.2;

    /// <summary>Multiplies every fault rate (per pump-year) to make faults frequent enough for short runs. Default: 1.</summary>
    public double FaultRateMultiplier { get; set; } = 1;

    /// <summary>Prefix of generated serials and hub ids, so that several fleets can share one platform. Default: <c>SIM</c>.</summary>
    public string SerialPrefix { get; set; } = "SIM";

    /// <summary>Fault scenario file (JSON), optional.</summary>
    public string? FaultsFile { get; set; }

    /// <summary>Ground-truth NDJSON output file, optional.</summary>
    public string? GroundTruthFile { get; set; }

    /// <summary>Fleet secret from which each hub's MQTT password is derived (see <c>FleetSecretHubCredentials</c>). Default: <c>dev</c>.</summary>
    public string FleetSecret { get; set; } = "dev";

    /// <summary>Real time between progress lines. Default: 5 s.</summary>
    public TimeSpan ProgressInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Real time to wait at the end for acks of everything sent. Default: 30 s.</summary>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>End of the simulated period.</summary>
    public DateTimeOffset End => Start + Duration;

    /// <summary>Broker host part.</summary>
    public string BrokerHost => SplitBroker().Host;

    /// <summary>Broker port part.</summary>
    public int BrokerPort => SplitBroker().Port;

    private (string Host, int Port) SplitBroker()
    {
        var i = Broker.LastIndexOf(':');
        if (i <= 0 || !int.TryParse(Broker.AsSpan(i + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            return (Broker, -1);
        }

        return (Broker[..i].Trim('[', ']'), port);
    }

    /// <summary>Every problem with these options; empty when they are usable.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (BrokerPort < 0 || BrokerHost.Length == 0)
        {
            errors.Add($"broker '{Broker}' must be host:port with a port 1-65535");
        }

        Check(Pumps is >= 1 and <= 1_000_000, "pumps must be 1-1000000");
        Check(Duration > TimeSpan.Zero && Duration <= TimeSpan.FromDays(3650), "duration must be positive and at most 3650 days");
        Check(Speed >= 0 && double.IsFinite(Speed), "speed must be >= 0 (0 = as fast as possible)");
        Check(ReportingInterval >= TimeSpan.FromMinutes(1) && ReportingInterval <= TimeSpan.FromDays(1), "reporting interval must be 1 minute to 1 day");
        Check(BatchInterval >= TimeSpan.FromMinutes(1) && BatchInterval <= TimeSpan.FromDays(7), "batch interval must be 1 minute to 7 days");
        Check(LevelInterval >= ReportingInterval, "level interval must be at least the reporting interval");
        Check(MaxPumpsPerHub is >= 1 and <= 16, "max pumps per hub must be 1-16");
        Check(SensorFraction is >= 0 and <= 1, "sensor fraction must be 0-1");
        Check(TrialFraction is >= 0 and <= 1, "trial fraction must be 0-1");
        Check(OfflineRatePerHubDay is >= 0 and <= 24, "offline rate must be 0-24 per hub-day");
        Check(OfflineMeanDuration > TimeSpan.Zero, "offline mean duration must be positive");
        Check(ClockResetRatePerPumpYear is >= 0 and <= 365, "clock reset rate must be 0-365 per pump-year");
        Check(FaultRateMultiplier is >= 0 and <= 1_000_000, "fault rate multiplier must be 0-1000000");
        Check(System.Text.RegularExpressions.Regex.IsMatch(SerialPrefix, "^[A-Za-z0-9][A-Za-z0-9._-]{0,40}$"),
            "serial prefix must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,40}$ (it becomes part of MQTT topics)");
        Check(!string.IsNullOrEmpty(FleetSecret), "fleet secret must not be empty");
        Check(ProgressInterval >= TimeSpan.FromMilliseconds(100), "progress interval must be at least 100 ms");
        Check(DrainTimeout >= TimeSpan.Zero, "drain timeout must be >= 0");
        if (FaultsFile is not null && !File.Exists(FaultsFile))
        {
            errors.Add($"faults file '{FaultsFile}' does not exist");
        }

        return errors;

        void Check(bool ok, string message)
        {
            if (!ok)
            {
                errors.Add(message);
            }
        }
    }

    /// <summary>Throws <see cref="ArgumentException"/> listing every problem.</summary>
    public void ThrowIfInvalid()
    {
        var errors = Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException("Invalid simulator options: " + string.Join("; ", errors));
        }
    }
}
