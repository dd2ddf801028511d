using System.Text.Json;
using System.Text.Json.Nodes;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.Domain.Detection;
using PumpFleet.Domain.Pumps;
using static PumpFleet.Grains.Tests.Ev;

namespace PumpFleet.Grains.Tests;

/// <summary>
/// Property: the pump fold is independent of arrival order. Random histories (refills, prescriptions, doses,
/// levels, alarms, stops, status, phases) are delivered as the gateway would (batches through the planner, as the
/// grain does) in seq order and in random arrival orders — batches shuffled, events held back and sent late,
/// batches resent (duplicates) — and must fold to the same state; a snapshot taken at any point and reloaded must
/// continue to the same state. Seeds are fixed (deterministic in CI); every seed that once failed stays below as a
/// named case.
/// </summary>
public sealed class FoldOrderPropertyTests
{
    private const int Histories = 150;

    [Fact]
    public void AnyArrivalOrder_FoldsToTheSeqOrderState()
    {
        var rebuilds = 0;
        for (var seed = 1; seed <= Histories; seed++)
        {
            rebuilds += CheckSeed(seed);
        }

        // Both paths were exercised: re-folds inside the window, and full replays of gaps filled after it.
        Assert.True(rebuilds > 0, "no history filled a gap older than the window");
    }

    /// <summary>Named cases: seeds that failed during development, kept so that they stay fixed.</summary>
    [Theory]
    [InlineData(8)]   // alarms raised, cleared and raised again in another order: dictionaries compared by content, not enumeration order
    public void NamedCases(int seed) => Assert.True(CheckSeed(seed) >= 0);

    [Fact]
    public void LateEvent_RefoldsTheRefillSafetyState_WithoutCountingATitrationStepTwice()
    {
        // Found when the refill-safety state (issue 16) met the fold window (issue 13): the window's checkpoints did
        // not copy it, so a re-fold observed every ziconotide step after the late event a second time.
        var t = T0;
        var zic = new Concentration { Value = 25, Unit = "mcg/mL" };
        PrescriptionSet Zic(long seq, DateTimeOffset at, double rate) =>
            new() { Seq = seq, At = at, Drug = "ziconotide", Concentration = zic, Mode = "continuous", RateMlPerDay = rate, LowReservoirAlarmMl = 2 };
        var events = new List<DeviceEvent>
        {
            Zic(1, t, 0.09),
            new RefillPerformed { Seq = 2, At = t.AddHours(1), ExpectedResidualMl = 0, AspiratedResidualMl = 0, AddedMl = 20, Drug = "ziconotide", Concentration = zic },
            Dose(3, t.AddHours(1), t.AddDays(1), 0.09),
            Zic(4, t.AddDays(1), 0.1),
            Dose(5, t.AddDays(1), t.AddDays(2), 0.1),
            Zic(6, t.AddDays(2), 0.11),
            Dose(7, t.AddDays(2), t.AddDays(3), 0.11),
        };
        var inOrder = Deliver([[.. events]]);
        var doseLate = Deliver([[events[0], events[1]], [events[3], events[4], events[5], events[6]], [events[2]]]);

        Assert.Equal(Canonical(inOrder.State), Canonical(doseLate.State));
    }

    [Fact]
    public void LateRefill_KeepsTheDosesThatFollowedIt()
    {
        var t = T0;
        var events = new List<DeviceEvent>
        {
            Continuous(1, t, 1.0),
            Refill(2, t.AddHours(1), added: 20),
            Dose(3, t.AddHours(1), t.AddDays(1), 1.0),
            Dose(4, t.AddDays(1), t.AddDays(2), 1.0),
            Refill(5, t.AddDays(2), added: 20, expected: 18, aspirated: 18),
            Dose(6, t.AddDays(2), t.AddDays(3), 1.0),
            Dose(7, t.AddDays(3), t.AddDays(4), 1.0),
        };
        var inOrder = Deliver([[.. events]]);
        var refillLate = Deliver([[events[0], events[1], events[2], events[3]], [events[5], events[6]], [events[4]]]);

        Assert.Equal(18, inOrder.State.Ledger.EstimatedMl!.Value, 9);
        Assert.Equal(18, refillLate.State.Ledger.EstimatedMl!.Value, 9);
        Assert.Equal(2, refillLate.State.Detectors.Refill.CycleDeliveredMl!.Value, 9);
        Assert.Equal(Canonical(inOrder.State), Canonical(refillLate.State));
    }

    [Fact]
    public void DecisionsInTheStream_ReplayToTheLiveState_AndSurviveASnapshot()
    {
        // With the engine deciding after every batch (anomaly events interleaved, flow restarts), the live state
        // must equal a replay of the stored stream and a snapshot reload: what activation and rebuild rely on.
        for (var seed = 1; seed <= 40; seed++)
        {
            var rng = new Random(seed);
            var history = History(rng, rng.Next(40, 260));
            var run = Deliver(Shuffle(rng, history), detect: true, snapshotAt: rng.Next(1, 20));
            var replayed = PumpState.Replay(run.State.Serial, run.Log);
            Assert.True(Full(run.State) == Full(replayed), $"seed {seed}: live state differs from a replay of its stream");
        }
    }

    private static int CheckSeed(int seed)
    {
        var rng = new Random(seed);
        var history = History(rng, rng.Next(5, seed % 10 == 0 ? 900 : 220));
        var expected = Canonical(Deliver([[.. history]]).State);
        var batches = Shuffle(rng, history);
        var actual = Deliver(batches);
        Assert.True(expected == Canonical(actual.State), $"seed {seed}: arrival order {Describe(batches)} folds to another state than seq order.\nexpected {expected}\nactual   {Canonical(actual.State)}");
        Assert.Equal(0, actual.State.Seqs.MissingCount);

        var reloaded = Deliver(batches, snapshotAt: rng.Next(0, batches.Count));
        Assert.True(expected == Canonical(reloaded.State), $"seed {seed}: a snapshot reloaded mid-way folds to another state");

        var replayed = PumpState.Replay(actual.State.Serial, actual.Log);
        Assert.True(expected == Canonical(replayed), $"seed {seed}: a replay of the stored stream folds to another state");
        Assert.Null(actual.State.Window);   // every gap filled: nothing kept
        return actual.Rebuilds;
    }

    /// <summary>A plausible pump history: seq 1..n, event time increasing, volumes within a 40 mL reservoir.</summary>
    private static List<DeviceEvent> History(Random rng, int n)
    {
        var events = new List<DeviceEvent>(n);
        var t = T0;
        var lastDose = t;
        var level = 30.0;
        var battery = 90.0;
        string[] alarms = ["LOW_RESERVOIR", "MOTOR_STALL", "ELECTIVE_REPLACEMENT"];
        for (long seq = 1; seq <= n; seq++)
        {
            t = t.AddMinutes(rng.Next(5, 600));
            var pick = seq == 1 ? 0 : rng.Next(100);
            DeviceEvent e = pick switch
            {
                < 5 => rng.Next(3) == 0
                    ? new PrescriptionSet
                    {
                        Seq = seq, At = t, Drug = rng.Next(2) == 0 ? "baclofen" : "morphine", Concentration = Morphine, Mode = "flex",
                        Schedule = [new FlexStep { Start = "00:00", RateMlPerDay = 0.4 }, new FlexStep { Start = "08:00", RateMlPerDay = 1.2 }],
                        Bolus = new BolusSettings { DoseMl = 0.05, LockoutMin = 60, MaxPerDay = 4 },
                    }
                    : Continuous(seq, t, Math.Round(rng.NextDouble() * 2, 3), rng.Next(2) == 0 ? null : 3),
                < 45 => DoseFrom(ref lastDose, seq, t, rng),
                < 60 => Level(seq, t, level = Math.Round(Math.Max(0, level - rng.NextDouble()), 3), rng.Next(4) == 0 ? "estimated" : "measured"),
                < 65 => Refill(seq, t, added: level = Math.Round(20 + (rng.NextDouble() * 18), 2), expected: Math.Round(rng.NextDouble() * 5, 2), aspirated: Math.Round(rng.NextDouble() * 5, 2)),
                < 72 => rng.Next(2) == 0
                    ? new DeliveryStateChanged { Seq = seq, At = t, State = "stopped", Reason = rng.Next(2) == 0 ? "stall" : "mri" }
                    : new DeliveryStateChanged { Seq = seq, At = t, State = "running" },
                < 80 => rng.Next(2) == 0
                    ? new AlarmRaised { Seq = seq, At = t, Code = alarms[rng.Next(alarms.Length)], Severity = rng.Next(2) == 0 ? "critical" : "non-critical" }
                    : new AlarmCleared { Seq = seq, At = t, Code = alarms[rng.Next(alarms.Length)] },
                < 92 => new StatusReported
                {
                    Seq = seq, At = t, BatteryPct = battery = Math.Round(Math.Max(0, battery - (rng.NextDouble() * 0.5)), 2),
                    Motor = rng.Next(5) == 0 ? "stalled" : "running", TempC = 37,
                },
                < 96 => new TherapyPhaseChanged { Seq = seq, At = t, Phase = rng.Next(3) == 0 ? "trial-continuous" : "implanted", Indication = rng.Next(2) == 0 ? "spasticity" : null },
                _ => new PainReported { Seq = seq, At = t, Score = rng.Next(11) },
            };
            events.Add(e);
        }

        return events;
    }

    private static DoseDelivered DoseFrom(ref DateTimeOffset lastDose, long seq, DateTimeOffset t, Random rng)
    {
        var from = lastDose;
        lastDose = t;
        var kind = rng.Next(6) == 0 ? "patient-bolus" : "basal";
        var volume = rng.Next(8) == 0 ? 0 : Math.Round((t - from).TotalDays * rng.NextDouble() * 1.5, 4);
        return Dose(seq, from, t, Math.Min(volume, 5), kind);
    }

    /// <summary>Batches as a gateway would see them out of order: shuffled, some events held back and sent last, some resent.</summary>
    private static List<DeviceEvent[]> Shuffle(Random rng, List<DeviceEvent> history)
    {
        var batches = new List<List<DeviceEvent>>();
        var held = new List<DeviceEvent>();
        for (var i = 0; i < history.Count;)
        {
            var size = Math.Min(rng.Next(1, 9), history.Count - i);
            var batch = new List<DeviceEvent>();
            foreach (var e in history.Skip(i).Take(size))
            {
                if (rng.Next(10) == 0)
                {
                    held.Add(e);   // lost in transit, filled in late
                }
                else
                {
                    batch.Add(e);
                }
            }

            if (batch.Count > 0)
            {
                batches.Add(batch);
            }

            i += size;
        }

        // Neighbouring batches swap (two gateways, a resend overtaking), sometimes one jumps far.
        for (var i = 0; i < batches.Count - 1; i++)
        {
            if (rng.Next(3) == 0)
            {
                (batches[i], batches[i + 1]) = (batches[i + 1], batches[i]);
            }
        }

        if (batches.Count > 2 && rng.Next(2) == 0)
        {
            var b = batches[rng.Next(batches.Count)];
            batches.Remove(b);
            batches.Add(b);
        }

        for (var k = rng.Next(3); k > 0 && batches.Count > 0; k--)
        {
            batches.Insert(rng.Next(batches.Count + 1), batches[rng.Next(batches.Count)]);   // duplicate delivery
        }

        rng.Shuffle(CollectionsMarshalSpan(held));
        foreach (var chunk in held.Chunk(3))
        {
            batches.Add([.. chunk.OrderBy(e => e.Seq)]);
        }

        return [.. batches.Select(b => b.ToArray())];
    }

    private static Span<DeviceEvent> CollectionsMarshalSpan(List<DeviceEvent> list) => System.Runtime.InteropServices.CollectionsMarshal.AsSpan(list);

    private sealed record Run(PumpState State, List<(PumpEvent Event, EventEnvelope Envelope)> Log, int Rebuilds);

    /// <summary>Delivers batches the way the grain does: plan, fold, replay the stream when the window did not reach.</summary>
    private static Run Deliver(IReadOnlyList<DeviceEvent[]> batches, bool detect = false, int snapshotAt = -1)
    {
        var options = new AnomalyDetectionOptions();
        var log = new List<(PumpEvent, EventEnvelope)>();
        var state = new PumpState { Serial = "P-prop" };
        var receivedAt = T0.AddYears(2);
        var rebuilds = 0;
        void Append(PumpEvent e, long? seq, bool suspect)
        {
            var env = new EventEnvelope(state.Version + 1, seq, receivedAt, suspect);
            state.Apply(e, env);
            log.Add((e, env));
        }

        Append(new PumpPaired { At = T0, HubId = "H-1", By = "test" }, null, false);
        Append(new DeviceIdentified { At = T0, Device = Device40 }, null, false);
        for (var i = 0; i < batches.Count; i++)
        {
            if (i == snapshotAt)
            {
                state = JsonSerializer.Deserialize<PumpState>(JsonSerializer.Serialize(state, SnapshotJson.Options), SnapshotJson.Options)!;
            }

            var plan = IngestPlanner.Plan(state, new IngestBatch { HubId = "H-1", ReceivedAt = receivedAt, Events = batches[i] }, Guid.NewGuid);
            Assert.Empty(plan.Rejections);
            foreach (var p in plan.Events)
            {
                Append(p.Event, p.Seq, p.ClockSuspect);
            }

            if (state.NeedsRebuild)
            {
                state = PumpState.Replay(state.Serial, log);
                rebuilds++;
            }

            if (detect)
            {
                foreach (var d in AnomalyEngine.Evaluate(state, options))
                {
                    Append(d, null, false);
                }
            }
        }

        return new Run(state, log, rebuilds);
    }

    /// <summary>The state that must not depend on arrival order: everything but the stream version and the window's caches.</summary>
    private static string Canonical(PumpState s)
    {
        var node = JsonNode.Parse(JsonSerializer.Serialize(s, SnapshotJson.Options))!.AsObject();
        node.Remove("version");
        node.Remove("window");
        return Sorted(node)!.ToJsonString();
    }

    // Dictionaries are unordered: their enumeration order depends on the history of removals, not on the state.
    private static JsonNode? Sorted(JsonNode? node) => node switch
    {
        JsonObject o => new JsonObject(o.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => KeyValuePair.Create(p.Key, Sorted(p.Value?.DeepClone())))),
        JsonArray a => new JsonArray([.. a.Select(x => Sorted(x?.DeepClone()))]),
        _ => node?.DeepClone(),
    };

    private static string Full(PumpState s)
    {
        var node = JsonNode.Parse(JsonSerializer.Serialize(s, SnapshotJson.Options))!.AsObject();
        node.Remove("window");
        return Sorted(node)!.ToJsonString();
    }

    private static string Describe(IReadOnlyList<DeviceEvent[]> batches) =>
        string.Join(" ", batches.Select(b => "[" + string.Join(",", b.Select(e => e.Seq)) + "]"));
}
