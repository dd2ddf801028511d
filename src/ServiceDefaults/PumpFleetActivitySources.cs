namespace PumpFleet.ServiceDefaults;

/// <summary>The activity sources a PumpFleet process traces, in one place for the tracer provider and the docs.</summary>
public static class PumpFleetActivitySources
{
    /// <summary>Every PumpFleet component's source: <c>PumpFleet.Gateway</c>, <c>PumpFleet.Grains</c>, <c>PumpFleet.EventStore</c>, <c>PumpFleet.Projections</c>.</summary>
    public const string Wildcard = "PumpFleet.*";

    /// <summary>Orleans' grain-call activities (client and server side; <c>AddActivityPropagation</c> on silo and client).</summary>
    public static readonly string[] Orleans = ["Microsoft.Orleans.Runtime", "Microsoft.Orleans.Application"];
}
