using System.Globalization;

namespace PumpFleet.Gateway.Tests.Infrastructure;

/// <summary>Builds hub protocol v1 payloads as text, so tests can also build broken ones.</summary>
public static class Batches
{
    public const string Device = """{"model":"SM2-40","firmware":"4.2.1","lot":"L2291","reservoirCapacityMl":40}""";

    public static readonly DateTimeOffset T0 = new(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);

    public static string Time(DateTimeOffset t) => t.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    public static string Dose(long seq, double volume = 0.02, DateTimeOffset? at = null)
    {
        var end = at ?? T0.AddHours(seq);
        return string.Create(CultureInfo.InvariantCulture,
            $$"""{"seq":{{seq}},"type":"dose.delivered","at":"{{Time(end)}}","from":"{{Time(end.AddHours(-1))}}","volumeMl":{{volume}},"kind":"basal"}""");
    }

    public static string Batch(params string[] events) => Batch(true, events);

    public static string Batch(bool withDevice, params string[] events) =>
        $$"""{"v":1,{{(withDevice ? $"\"device\":{Device}," : "")}}"events":[{{string.Join(",", events)}}]}""";

    public static string Doses(long from, long to) => Batch([.. Enumerable.Range((int)from, (int)(to - from + 1)).Select(s => Dose(s))]);
}
