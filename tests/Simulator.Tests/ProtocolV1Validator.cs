using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace PumpFleet.Simulator.Tests;

/// <summary>
/// An independent reading of docs/protocol.md (hub protocol v1) (event batch and event types), written from the document,
/// not from the simulator's code, so that the two check each other.
/// </summary>
internal static partial class ProtocolV1Validator
{
    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    private static partial Regex Identifier();

    private static readonly HashSet<string> Phases = ["trial-single-dose", "trial-multi-dose", "trial-continuous", "implanted", "explanted"];
    private static readonly HashSet<string> Indications = ["cancer-pain", "chronic-back-pain", "neck-pain", "failed-back-surgery", "crps", "postherpetic-neuralgia", "neuropathy", "spasticity", "other"];
    private static readonly HashSet<string> DoseKinds = ["basal", "periodic", "patient-bolus", "priming", "bridging"];
    private static readonly HashSet<string> StopReasons = ["programming", "mri", "clinician", "stall", "end-of-service"];
    private static readonly HashSet<string> AlarmCodes = ["LOW_RESERVOIR", "CRITICAL_LOW_RESERVOIR", "MOTOR_STALL", "ELECTIVE_REPLACEMENT", "END_OF_SERVICE", "LOW_BATTERY_RESET", "PUMP_MEMORY_ERROR", "CATHETER_OCCLUSION", "OTHER"];

    public static void CheckTopic(string topic)
    {
        var parts = topic.Split('/');
        Assert.Equal(7, parts.Length);
        Assert.Equal(["pumpfleet", "v1", "hubs"], parts[..3]);
        Assert.Equal("pumps", parts[4]);
        Assert.Equal("events", parts[6]);
        Assert.Matches(Identifier(), parts[3]);
        Assert.Matches(Identifier(), parts[5]);
    }

    /// <summary>Checks one batch and returns its seqs.</summary>
    public static List<long> CheckBatch(string payload, bool deviceRequired)
    {
        Assert.True(Encoding.UTF8.GetByteCount(payload) <= 256 * 1024, "message over 256 KiB");
        using var doc = JsonDocument.Parse(payload);
        var root = doc.RootElement;
        Assert.Equal(1, root.GetProperty("v").GetInt32());
        if (root.TryGetProperty("device", out var device))
        {
            Assert.False(string.IsNullOrEmpty(device.GetProperty("model").GetString()));
            Assert.False(string.IsNullOrEmpty(device.GetProperty("firmware").GetString()));
            Assert.False(string.IsNullOrEmpty(device.GetProperty("lot").GetString()));
            Assert.Contains(device.GetProperty("reservoirCapacityMl").GetDouble(), new[] { 20.0, 40.0 });
        }
        else
        {
            Assert.False(deviceRequired, "device missing on a pump's first batch");
        }

        var events = root.GetProperty("events");
        Assert.InRange(events.GetArrayLength(), 1, 500);
        var seqs = new List<long>();
        foreach (var e in events.EnumerateArray())
        {
            var seq = e.GetProperty("seq").GetInt64();
            Assert.True(seq >= 1);
            Assert.True(seqs.Count == 0 || seq > seqs[^1], "seq not increasing within the batch");
            seqs.Add(seq);
            Time(e, "at");
            CheckFields(e);
        }

        return seqs;
    }

    private static DateTimeOffset Time(JsonElement e, string name)
    {
        var s = e.GetProperty(name).GetString()!;
        Assert.Matches(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", s);
        return DateTimeOffset.Parse(s, CultureInfo.InvariantCulture);
    }

    private static void In(HashSet<string> set, JsonElement e, string name) => Assert.Contains(e.GetProperty(name).GetString()!, set);

    private static void OptionalIn(HashSet<string> set, JsonElement e, string name)
    {
        if (e.TryGetProperty(name, out var v))
        {
            Assert.Contains(v.GetString()!, set);
        }
    }

    private static void NonNegative(JsonElement e, string name) => Assert.True(e.GetProperty(name).GetDouble() >= 0, $"{name} negative");

    private static void CheckConcentration(JsonElement c)
    {
        Assert.True(c.GetProperty("value").GetDouble() > 0);
        Assert.Contains(c.GetProperty("unit").GetString()!, new[] { "mg/mL", "mcg/mL" });
    }

    private static void CheckFields(JsonElement e)
    {
        switch (e.GetProperty("type").GetString())
        {
            case "therapy.phase":
                In(Phases, e, "phase");
                OptionalIn(Indications, e, "indication");
                break;
            case "prescription.set":
                Assert.False(string.IsNullOrEmpty(e.GetProperty("drug").GetString()));
                CheckConcentration(e.GetProperty("concentration"));
                var mode = e.GetProperty("mode").GetString();
                if (mode == "continuous")
                {
                    Assert.InRange(e.GetProperty("rateMlPerDay").GetDouble(), 0.0001, 100);
                }
                else
                {
                    Assert.Equal("flex", mode);
                    var steps = e.GetProperty("schedule").EnumerateArray().ToList();
                    Assert.NotEmpty(steps);
                    foreach (var s in steps)
                    {
                        Assert.Matches("^([01][0-9]|2[0-3]):[0-5][0-9]$", s.GetProperty("start").GetString()!);
                        NonNegative(s, "rateMlPerDay");
                    }
                }

                if (e.TryGetProperty("bolus", out var b))
                {
                    Assert.True(b.GetProperty("doseMl").GetDouble() > 0);
                    Assert.True(b.GetProperty("lockoutMin").GetInt32() >= 0);
                    Assert.True(b.GetProperty("maxPerDay").GetInt32() >= 1);
                }

                if (e.TryGetProperty("lowReservoirAlarmMl", out _))
                {
                    NonNegative(e, "lowReservoirAlarmMl");
                }

                break;
            case "dose.delivered":
                var from = Time(e, "from");
                Assert.True(from <= Time(e, "at"), "from after at");
                NonNegative(e, "volumeMl");
                In(DoseKinds, e, "kind");
                break;
            case "bolus.requested":
                var granted = e.GetProperty("granted").GetBoolean();
                if (e.TryGetProperty("reason", out var reason))
                {
                    Assert.False(granted);
                    Assert.Contains(reason.GetString()!, new[] { "lockout", "daily-limit" });
                }

                break;
            case "reservoir.level":
                NonNegative(e, "volumeMl");
                Assert.Contains(e.GetProperty("source").GetString()!, new[] { "measured", "estimated" });
                break;
            case "refill":
                NonNegative(e, "expectedResidualMl");
                NonNegative(e, "aspiratedResidualMl");
                NonNegative(e, "addedMl");
                Assert.False(string.IsNullOrEmpty(e.GetProperty("drug").GetString()));
                CheckConcentration(e.GetProperty("concentration"));
                break;
            case "delivery.state":
                Assert.Contains(e.GetProperty("state").GetString()!, new[] { "running", "stopped" });
                OptionalIn(StopReasons, e, "reason");
                break;
            case "alarm.raised":
                In(AlarmCodes, e, "code");
                Assert.Contains(e.GetProperty("severity").GetString()!, new[] { "critical", "non-critical" });
                break;
            case "alarm.cleared":
                In(AlarmCodes, e, "code");
                break;
            case "status":
                if (e.TryGetProperty("batteryPct", out var pct))
                {
                    Assert.InRange(pct.GetDouble(), 0, 100);
                }

                if (e.TryGetProperty("batteryV", out var v))
                {
                    Assert.True(v.GetDouble() > 0);
                }

                if (e.TryGetProperty("tempC", out var t))
                {
                    Assert.InRange(t.GetDouble(), 20, 45);
                }

                if (e.TryGetProperty("motor", out var m))
                {
                    Assert.Contains(m.GetString()!, new[] { "running", "stopped", "stalled" });
                }

                break;
            case "pain.reported":
                Assert.InRange(e.GetProperty("score").GetInt32(), 0, 10);
                break;
            default:
                Assert.Fail($"unknown type {e.GetProperty("type")}");
                break;
        }
    }
}
