using System.Diagnostics;

namespace PumpFleet.Grains;

/// <summary>The grains' activity source (<c>PumpFleet.Grains</c>): plan, fold and detect spans inside a pump grain call.</summary>
public static class GrainsTracing
{
    /// <summary>The source name.</summary>
    public const string SourceName = "PumpFleet.Grains";

    /// <summary>The grains' activity source.</summary>
    public static readonly ActivitySource Source = new(SourceName);
}
