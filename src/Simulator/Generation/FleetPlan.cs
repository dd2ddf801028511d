using System.Globalization;
using System.Text.Json.Nodes;
using PumpFleet.Contracts.Events;
using PumpFleet.Simulator.Faults;

namespace PumpFleet.Simulator.Generation;

/// <summary>
/// The fleet layout and every planned fault and outage, derived from the options, the scenario and the seed alone.
/// </summary>
public sealed class FleetPlan
{
    /// <summary>Hubs in order.</summary>
    public IReadOnlyList<HubProfile> Hubs { get; }

    /// <summary>Pumps in order.</summary>
    public IReadOnlyList<PumpProfile> Pumps { get; }

    internal IReadOnlyList<List<PlannedFault>> PumpFaults { get; }
    internal IReadOnlyList<List<HubOutage>> HubOutages { get; }
    internal IReadOnlyList<GroundTruthRecord> CohortRecords { get; }

    internal FleetPlan(SimulatorOptions o, FaultScenario scenario)
    {
        var pumps = new List<PumpProfile>(o.Pumps);
        var hubs = new List<HubProfile>();
        var layout = SeededRandom.For(o.Seed, "layout", 0);
        var i = 0;
        while (i < o.Pumps)
        {
            var hubId = string.Create(CultureInfo.InvariantCulture, $"{o.SerialPrefix}-H{hubs.Count:D5}");
            var size = Math.Min(o.MaxPumpsPerHub, layout.PickWeighted<int>([(1, 60), (2, 25), (3, 10), (4, 5)]));
            var hubFirmware = layout.Pick(["1.4.2", "1.5.0", "1.6.1"]);
            size = Math.Min(size, o.Pumps - i);
            var members = new List<PumpProfile>(size);
            for (var k = 0; k < size; k++, i++)
            {
                var r = SeededRandom.For(o.Seed, "profile", i);
                var model = r.Pick(Catalog.Models);
                var device = new DeviceInfo
                {
                    Model = model.Name,
                    Firmware = r.Pick(model.Firmwares),
                    Lot = r.Pick(model.Lots),
                    ReservoirCapacityMl = model.CapacityMl,
                };
                var p = new PumpProfile(i, PumpProfile.SerialOf(o.SerialPrefix, i), hubId, device, r.Chance(o.SensorFraction));
                members.Add(p);
                pumps.Add(p);
            }

            hubs.Add(new HubProfile(hubs.Count, hubId, hubFirmware, members));
        }

        Pumps = pumps;
        Hubs = hubs;
        var rates = new Dictionary<string, double>(FaultKind.DefaultRates, StringComparer.Ordinal);
        foreach (var (k, v) in scenario.Rates ?? [])
        {
            rates[k] = v;
        }

        var years = o.Duration.TotalDays / 365.25;
        var pumpFaults = pumps.Select(_ => new List<PlannedFault>()).ToList();
        var cohortRecords = new List<GroundTruthRecord>();
        foreach (var p in pumps)
        {
            var r = SeededRandom.For(o.Seed, "faults", p.Index);
            var drifts = (scenario.CohortDrift ?? []).Where(c =>
                (c.Firmware is not null && c.Firmware == p.Device.Firmware) || (c.Lot is not null && c.Lot == p.Device.Lot)).ToList();
            foreach (var d in drifts)
            {
                cohortRecords.Add(new GroundTruthRecord(p.Serial, p.HubId, FaultKind.CohortDrift, o.Start, null, new JsonObject
                {
                    [d.Firmware is not null ? "firmware" : "lot"] = d.Firmware ?? d.Lot,
                    ["kinds"] = new JsonArray([.. KindsOf(d).Select(k => (JsonNode)k)]),
                    ["rateMultiplier"] = d.RateMultiplier,
                }));
            }

            foreach (var kind in FaultKind.PumpKinds)
            {
                var multiplier = o.FaultRateMultiplier;
                var cause = (string?)null;
                foreach (var d in drifts.Where(d => KindsOf(d).Contains(kind)))
                {
                    multiplier *= d.RateMultiplier;
                    cause = FaultKind.CohortDrift;
                }

                var probability = 1 - Math.Exp(-rates[kind] * multiplier * years);
                var draw = r.NextDouble();
                var startDraw = r.NextDouble();
                if (draw < probability)
                {
                    var start = AlignDown(o, o.Start + (o.Duration * startDraw));
                    var parameters = new JsonObject();
                    if (cause is not null)
                    {
                        parameters["cause"] = cause;
                    }

                    pumpFaults[p.Index].Add(Complete(kind, start, null, parameters, r));
                }
            }
        }

        var hubOutages = hubs.Select(_ => new List<HubOutage>()).ToList();
        foreach (var h in hubs)
        {
            var r = SeededRandom.For(o.Seed, "hub", h.Index);
            var t = o.Start;
            while (o.OfflineRatePerHubDay > 0)
            {
                t += TimeSpan.FromSeconds(Math.Round(r.Exponential(86400 / o.OfflineRatePerHubDay)));
                if (t >= o.End)
                {
                    break;
                }

                var length = TimeSpan.FromSeconds(Math.Round(Math.Max(60, r.Exponential(o.OfflineMeanDuration.TotalSeconds))));
                hubOutages[h.Index].Add(new HubOutage(t, t + length, false));
                t += length;
            }

            var silentProbability = 1 - Math.Exp(-rates[FaultKind.SilentHub] * o.FaultRateMultiplier * years);
            if (r.NextDouble() < silentProbability)
            {
                var start = AlignDown(o, o.Start + (o.Duration * r.NextDouble()));
                hubOutages[h.Index].Add(new HubOutage(start, start + TimeSpan.FromHours(Math.Round(r.Uniform(48, 168))), true));
            }
        }

        var scenarioIndex = 0;
        foreach (var f in scenario.Faults ?? [])
        {
            var start = f.Start ?? o.Start + TimeSpan.FromDays(f.StartAfterDays ?? 0);
            var end = f.End ?? (f.DurationDays is { } days ? start + TimeSpan.FromDays(days) : null);
            var r = SeededRandom.For(o.Seed, "scenario", scenarioIndex++);
            if (f.Kind == FaultKind.SilentHub)
            {
                var hub = f.HubId is not null
                    ? hubs.FirstOrDefault(h => h.HubId == f.HubId) ?? throw new FormatException($"faults: no hub '{f.HubId}' in this fleet")
                    : hubs.First(h => h.HubId == ResolvePump(f, pumps).HubId);
                hubOutages[hub.Index].Add(new HubOutage(start, end ?? o.End, true));
                continue;
            }

            var pump = ResolvePump(f, pumps);
            pumpFaults[pump.Index].Add(Complete(f.Kind, start, end, (JsonObject?)f.Parameters?.DeepClone() ?? [], r));
        }

        foreach (var list in pumpFaults)
        {
            list.Sort((a, b) => a.Start.CompareTo(b.Start));
        }

        foreach (var list in hubOutages)
        {
            list.Sort((a, b) => a.Start.CompareTo(b.Start));
        }

        PumpFaults = pumpFaults;
        HubOutages = hubOutages;
        CohortRecords = cohortRecords;
    }

    private static IReadOnlyList<string> KindsOf(CohortDriftSpec d) =>
        d.Kinds is { Count: > 0 } k ? k : [FaultKind.FullStall, FaultKind.IntermittentStall];

    private static PumpProfile ResolvePump(ScenarioFault f, IReadOnlyList<PumpProfile> pumps)
    {
        if (f.PumpIndex is { } idx)
        {
            return idx >= 0 && idx < pumps.Count ? pumps[idx] : throw new FormatException($"faults: pumpIndex {idx} is outside the fleet of {pumps.Count}");
        }

        return pumps.FirstOrDefault(p => p.Serial == f.Serial) ?? throw new FormatException($"faults: no pump '{f.Serial}' in this fleet");
    }

    /// <summary>Fills in the kind's default parameters and end, so the ground truth shows what was actually injected.</summary>
    private static PlannedFault Complete(string kind, DateTimeOffset start, DateTimeOffset? end, JsonObject p, Random r)
    {
        void Default(string name, double value)
        {
            if (!p.ContainsKey(name))
            {
                p[name] = Math.Round(value, 2);
            }
        }

        switch (kind)
        {
            case FaultKind.IntermittentStall:
                Default("episodesPerDay", r.Uniform(1, 4));
                Default("episodeHours", r.Uniform(1, 6));
                end ??= start + TimeSpan.FromHours(Math.Round(r.Uniform(48, 240)));
                break;
            case FaultKind.UnderInfusion:
                Default("percent", r.Uniform(20, 50));
                break;
            case FaultKind.OverInfusion:
                // Beyond the ±14.5 % accuracy band, which is what defines over-infusion (§0.2).
                Default("percent", r.Uniform(20, 50));
                break;
            case FaultKind.PocketFill:
                Default("fractionInPocket", 1);
                break;
            case FaultKind.WrongConcentration:
                // A four-fold strength error, as 500 → 2000 mcg/mL baclofen (both supplied strengths, §1.5).
                Default("factor", 4);
                break;
            case FaultKind.CatheterOcclusion:
                if (!p.ContainsKey("alarm"))
                {
                    // Occlusion is not a labelled pump alarm (§2.1), so most occlusions stay silent.
                    p["alarm"] = r.Chance(0.3);
                }

                Default("alarmDelayHours", r.Uniform(2, 48));
                break;
            case FaultKind.BatteryFailure:
                Default("eriAfterDays", r.Uniform(0, 7));
                // ERI→EOS can be shorter than 90 days in pumps with the battery issue (§1.1).
                Default("eosAfterEriDays", r.Uniform(14, 60));
                break;
        }

        return new PlannedFault(kind, start, end, p);
    }

    internal static DateTimeOffset AlignDown(SimulatorOptions o, DateTimeOffset t)
    {
        var ticks = (t - o.Start).Ticks / o.ReportingInterval.Ticks;
        return o.Start + TimeSpan.FromTicks(ticks * o.ReportingInterval.Ticks);
    }

    internal static DateTimeOffset AlignUp(SimulatorOptions o, DateTimeOffset t)
    {
        var down = AlignDown(o, t);
        return down == t ? t : down + o.ReportingInterval;
    }
}
