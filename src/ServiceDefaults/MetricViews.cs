using System.Diagnostics.Metrics;
using OpenTelemetry.Metrics;

namespace PumpFleet.ServiceDefaults;

/// <summary>
/// OpenTelemetry views that make the libraries' instruments pass <c>promtool check metrics</c>: help text for Orleans'
/// instruments (they have none), Prometheus base units for Orleans' millisecond and megabyte instruments (converted by
/// <see cref="OrleansUnitBridge"/>, the originals dropped here), and no <c>_count</c> suffix on gauges (Prometheus
/// reserves it for histograms and summaries; Npgsql's and the runtime's semantic-convention names end in <c>.count</c>).
/// </summary>
public static class MetricViews
{
    /// <summary>Gauge-like instruments renamed so their Prometheus names do not end in <c>_count</c>.</summary>
    public static readonly IReadOnlyDictionary<string, string> Renames = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["db.client.connection.count"] = "db.client.connections",
        ["dotnet.assembly.count"] = "dotnet.assemblies",
        ["dotnet.process.cpu.count"] = "dotnet.process.cpus",
        ["dotnet.timer.count"] = "dotnet.timers",
    };

    /// <summary>The view: one configuration per instrument, or null to export it as it is.</summary>
    /// <remarks>One function, not several views: every view that matches an instrument adds a stream of its own.</remarks>
    public static MetricStreamConfiguration? Configure(Instrument instrument)
    {
        if (OrleansUnitBridge.IsConverted(instrument))
        {
            return MetricStreamConfiguration.Drop;
        }

        if (Renames.TryGetValue(instrument.Name, out var name))
        {
            return new MetricStreamConfiguration { Name = name };
        }

        if (instrument.Meter.Name == OrleansUnitBridge.OrleansMeterName && string.IsNullOrEmpty(instrument.Description))
        {
            return new MetricStreamConfiguration { Description = OrleansDescription(instrument.Name) };
        }

        return null;
    }

    /// <summary>Help text for an Orleans instrument, which Orleans publishes without a description.</summary>
    public static string OrleansDescription(string instrumentName) =>
        $"Orleans runtime instrument {instrumentName} (see https://learn.microsoft.com/dotnet/orleans/host/monitoring/).";
}
