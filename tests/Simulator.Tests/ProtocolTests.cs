using System.Text.Json;
using PumpFleet.Simulator.Generation;

namespace PumpFleet.Simulator.Tests;

public sealed class ProtocolTests
{
    [Fact]
    public void EveryBatch_ValidatesAgainstProtocolV1()
    {
        // Everything switched on: faults, outages, clock resets, trials.
        var o = new SimulatorOptions
        {
            Pumps = 40,
            Duration = TimeSpan.FromDays(20),
            Seed = 11,
            FaultRateMultiplier = 100,
            OfflineRatePerHubDay = 0.3,
            ClockResetRatePerPumpYear = 10,
            TrialFraction = 0.2,
        };
        var lastSeq = new Dictionary<string, long>(StringComparer.Ordinal);
        var needsDevice = new HashSet<string>(StringComparer.Ordinal);
        var hubOf = new FleetGenerator(o).Plan.Pumps.ToDictionary(p => p.Serial, p => p.HubId);
        var batches = 0;
        var clockSuspect = 0;
        foreach (var item in new FleetGenerator(o).Generate())
        {
            if (item is HubConnectivityChanged { Online: true } c)
            {
                foreach (var (serial, hub) in hubOf)
                {
                    if (hub == c.HubId)
                    {
                        needsDevice.Add(serial);
                    }
                }
            }

            if (item is not PumpBatch b)
            {
                continue;
            }

            batches++;
            ProtocolV1Validator.CheckTopic(b.Topic);
            var first = !lastSeq.ContainsKey(b.Serial);
            var seqs = ProtocolV1Validator.CheckBatch(b.ToJson(), first || needsDevice.Contains(b.Serial));
            needsDevice.Remove(b.Serial);

            // The generator never loses anything: seqs run 1, 2, 3, ... across batches.
            Assert.Equal(lastSeq.GetValueOrDefault(b.Serial) + 1, seqs[0]);
            Assert.Equal(seqs[0] + seqs.Count - 1, seqs[^1]);
            lastSeq[b.Serial] = seqs[^1];
            clockSuspect += b.Events.Count(e => e.Event.At.Year < 2010);
        }

        Assert.Equal(o.Pumps, lastSeq.Count);
        Assert.True(batches > 1000);
        Assert.True(clockSuspect > 0, "clock resets should show as pre-2010 times");
    }

    [Fact]
    public void BasalDoses_CoverContiguousIntervals()
    {
        var o = TestFleet.Quiet(pumps: 10, days: 30);
        var outputs = TestFleet.Run(o);
        for (var i = 0; i < o.Pumps; i++)
        {
            var basal = TestFleet.EventsOf(outputs, TestFleet.Serial(i)).OfType<Contracts.Events.DoseDelivered>().Where(d => d.Kind == "basal").ToList();
            Assert.Equal(o.Start, basal[0].From);
            for (var k = 1; k < basal.Count; k++)
            {
                Assert.Equal(basal[k - 1].At, basal[k].From);
            }

            Assert.Equal(o.End, basal[^1].At);
        }
    }

    [Fact]
    public void FullQueue_IsCutIntoBatchesOf500()
    {
        // A hub sending once a week holds far more than 500 events per pump.
        var o = TestFleet.Quiet(pumps: 2, days: 30);
        o.BatchInterval = TimeSpan.FromDays(7);
        o.ReportingInterval = TimeSpan.FromMinutes(5);
        var batches = TestFleet.Run(o).OfType<PumpBatch>().ToList();
        Assert.Contains(batches, b => b.Events.Count == 500);
        Assert.All(batches, b => Assert.InRange(b.Events.Count, 1, 500));
        foreach (var b in batches)
        {
            using var doc = JsonDocument.Parse(b.ToJson());
            Assert.Equal(b.Events.Count, doc.RootElement.GetProperty("events").GetArrayLength());
        }
    }

    [Fact]
    public void FastEventWriter_MatchesTheSerializer_ByteForByte()
    {
        var o = new SimulatorOptions { Pumps = 30, Duration = TimeSpan.FromDays(10), Seed = 3, FaultRateMultiplier = 200, TrialFraction = 0.3 };
        var types = new HashSet<string>();
        foreach (var e in new FleetGenerator(o).GenerateBatches().SelectMany(b => b.Events))
        {
            Assert.Equal(Wire.WireJson.EventViaSerializer(e.Event), e.Json);
            types.Add(Contracts.Json.EventTypes.NameOf(e.Event));
        }

        Assert.True(types.Count >= 10, string.Join(",", types));
    }
}
