using System.Text.Json;
using System.Text.Json.Nodes;

namespace PumpFleet.Simulator.Faults;

/// <summary>
/// A fault scenario file: rate overrides, cohort drifts and explicit faults. See docs/simulator.md for the format.
/// </summary>
public sealed record FaultScenario
{
    /// <summary>Rates per pump-year (silent-hub: per hub-year) that replace the defaults, by kind.</summary>
    public Dictionary<string, double>? Rates { get; init; }

    /// <summary>Cohorts whose pumps get multiplied fault rates.</summary>
    public List<CohortDriftSpec>? CohortDrift { get; init; }

    /// <summary>Faults injected at a given pump or hub and time.</summary>
    public List<ScenarioFault>? Faults { get; init; }

    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web)
    {
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow,
    };

    /// <summary>Parses and checks a scenario; throws <see cref="FormatException"/> naming the problem.</summary>
    public static FaultScenario Parse(string json)
    {
        FaultScenario scenario;
        try
        {
            scenario = JsonSerializer.Deserialize<FaultScenario>(json, JsonOptions) ?? new FaultScenario();
        }
        catch (JsonException e)
        {
            throw new FormatException($"Fault scenario is not valid: {e.Message}", e);
        }

        scenario.Check();
        return scenario;
    }

    /// <summary>Loads a scenario file.</summary>
    public static FaultScenario Load(string path) => Parse(File.ReadAllText(path));

    private void Check()
    {
        foreach (var (kind, rate) in Rates ?? [])
        {
            if (!FaultKind.DefaultRates.ContainsKey(kind))
            {
                throw new FormatException($"rates: unknown kind '{kind}'");
            }

            if (rate < 0 || !double.IsFinite(rate))
            {
                throw new FormatException($"rates: '{kind}' must be >= 0");
            }
        }

        foreach (var c in CohortDrift ?? [])
        {
            if ((c.Firmware is null) == (c.Lot is null))
            {
                throw new FormatException("cohortDrift: give exactly one of firmware or lot");
            }

            if (c.RateMultiplier <= 0)
            {
                throw new FormatException("cohortDrift: rateMultiplier must be > 0");
            }

            foreach (var k in c.Kinds ?? [])
            {
                if (!FaultKind.PumpKinds.Contains(k))
                {
                    throw new FormatException($"cohortDrift: '{k}' is not a pump fault kind");
                }
            }
        }

        foreach (var f in Faults ?? [])
        {
            if (!FaultKind.All.Contains(f.Kind) || f.Kind == FaultKind.CohortDrift)
            {
                throw new FormatException($"faults: unknown or cohort-only kind '{f.Kind}' (use cohortDrift for cohorts)");
            }

            var targets = (f.Serial is null ? 0 : 1) + (f.PumpIndex is null ? 0 : 1) + (f.HubId is null ? 0 : 1);
            if (targets != 1)
            {
                throw new FormatException($"faults: a {f.Kind} needs exactly one of serial, pumpIndex or hubId");
            }

            if (f.HubId is not null && f.Kind != FaultKind.SilentHub)
            {
                throw new FormatException("faults: hubId is only for silent-hub");
            }

            if ((f.Start is null) == (f.StartAfterDays is null))
            {
                throw new FormatException($"faults: a {f.Kind} needs exactly one of start or startAfterDays");
            }

            if (f.End is not null && f.DurationDays is not null)
            {
                throw new FormatException($"faults: a {f.Kind} takes at most one of end or durationDays");
            }

            if (f.StartAfterDays < 0 || f.DurationDays <= 0)
            {
                throw new FormatException($"faults: a {f.Kind} needs startAfterDays >= 0 and durationDays > 0");
            }
        }
    }
}
