namespace PumpFleet.Domain.Detection.CohortFlow;

/// <summary>
/// A cohort for the flow early warning: one dimension (lot, model or firmware) and its value. Its anomalies live on
/// the fleet-level stream <c>cohort-flow:{dimension}:{value}</c>.
/// </summary>
public sealed record CohortKey(string Dimension, string Value)
{
    /// <summary>Manufacturing lot.</summary>
    public const string Lot = "lot";

    /// <summary>Pump model.</summary>
    public const string Model = "model";

    /// <summary>Firmware version.</summary>
    public const string Firmware = "firmware";

    /// <summary>Prefix of the cohort-flow streams (fleet-level: contains ':', so never a pump serial).</summary>
    public const string StreamPrefix = "cohort-flow:";

    /// <summary>The dimensions tested, most specific first (a lot belongs to one model).</summary>
    public static readonly IReadOnlyList<string> Dimensions = [Lot, Model, Firmware];

    /// <summary>The cohort's stream id.</summary>
    public string StreamId => $"{StreamPrefix}{Dimension}:{Value}";

    /// <summary>A readable name, e.g. "lot L2201".</summary>
    public override string ToString() => $"{Dimension} {Value}";

    /// <summary>Parses a stream id made by <see cref="StreamId"/>; null for any other stream.</summary>
    public static CohortKey? FromStreamId(string? streamId)
    {
        if (streamId is null || !streamId.StartsWith(StreamPrefix, StringComparison.Ordinal))
        {
            return null;
        }

        var rest = streamId[StreamPrefix.Length..];
        var colon = rest.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0 || colon == rest.Length - 1)
        {
            return null;
        }

        var dimension = rest[..colon];
        return Dimensions.Contains(dimension) ? new CohortKey(dimension, rest[(colon + 1)..]) : null;
    }

    /// <summary>The pump's value in <paramref name="dimension"/>.</summary>
    public static string? ValueOf(string dimension, string? model, string? firmware, string? lot) => dimension switch
    {
        Lot => lot,
        Model => model,
        Firmware => firmware,
        _ => null,
    };

    /// <summary>Whether a pump with these device facts belongs to the cohort.</summary>
    public bool Contains(string? model, string? firmware, string? lot) =>
        ValueOf(Dimension, model, firmware, lot) is { } v && string.Equals(v, Value, StringComparison.Ordinal);
}
