using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.Contracts.Json;
using PumpFleet.EventStore;

namespace PumpFleet.Projections.Tests.Seed;

/// <summary>
/// A deterministic simulated fleet: per pump a realistic hub-protocol history (implant, prescription, refill, hourly
/// doses, sensor readings, status, alarms), and for some pumps platform anomalies. The same seed gives the same
/// events, so read models built from it in different databases can be compared row by row.
/// </summary>
public sealed class FleetSeed(int pumps, int hours = 72, DateTimeOffset? start = null, string prefix = "SN")
{
    private static readonly string[] Models = ["SM2-40", "SM2-20", "PR-20"];
    private static readonly string[] Firmwares = ["4.2.1", "4.3.0"];
    private static readonly string[] Lots = ["L2291", "L2305"];

    /// <summary>Time of the first event (whole hour, in the past so no event is "in the future").</summary>
    public DateTimeOffset Start { get; } = start ?? new DateTimeOffset(DateTime.UtcNow.Date, TimeSpan.Zero).AddDays(-5);

    /// <summary>The pump serials.</summary>
    public IReadOnlyList<string> Serials { get; } = Enumerable.Range(0, pumps).Select(i => $"{prefix}{i:D4}").ToList();

    /// <summary>Hub of a pump.</summary>
    public static string HubOf(string serial) => "HUB-" + serial;

    /// <summary>Device description of a pump.</summary>
    public DeviceInfo DeviceOf(int i) => new()
    {
        Model = Models[i % Models.Length], Firmware = Firmwares[i / 3 % Firmwares.Length], Lot = Lots[i / 6 % Lots.Length],
        ReservoirCapacityMl = Models[i % Models.Length].EndsWith("20", StringComparison.Ordinal) ? 20 : 40,
    };

    /// <summary>Programmed rate of pump <paramref name="i"/> (mL/day).</summary>
    public static double RateOf(int i) => 0.5 + (i % 5 * 0.1);

    /// <summary>Pump 0 over-infuses by 30 %: its motor delivers more than programmed.</summary>
    public static double DeliveryFactor(int i) => i == 0 ? 1.3 : 1.0;

    /// <summary>The device events of pump <paramref name="i"/> with seq in (afterHour, toHour] of the dosing timeline.</summary>
    public IReadOnlyList<DeviceEvent> DeviceEvents(int i, int fromHour = 0, int? toHour = null)
    {
        var to = toHour ?? hours;
        var events = new List<DeviceEvent>();
        var seq = 0L;
        var rate = RateOf(i);
        var concentration = new Concentration { Value = 2000, Unit = "mcg/mL" };
        void Add(DeviceEvent e, int hour)
        {
            if (hour > fromHour - (fromHour == 0 ? 1 : 0) && hour <= to)
            {
                events.Add(e);
            }
        }

        Add(new TherapyPhaseChanged { Seq = ++seq, At = Start, Phase = "implanted", Indication = "spasticity" }, 0);
        Add(new PrescriptionSet { Seq = ++seq, At = Start.AddMinutes(1), Drug = i % 2 == 0 ? "baclofen" : "morphine", Concentration = concentration, Mode = "continuous", RateMlPerDay = rate, LowReservoirAlarmMl = 2 }, 0);
        Add(new RefillPerformed { Seq = ++seq, At = Start.AddMinutes(2), ExpectedResidualMl = 2, AspiratedResidualMl = 2, AddedMl = 18, Drug = i % 2 == 0 ? "baclofen" : "morphine", Concentration = concentration }, 0);
        Add(new DeliveryStateChanged { Seq = ++seq, At = Start.AddMinutes(3), State = "running" }, 0);
        var level = 18.0;
        for (var h = 1; h <= hours; h++)
        {
            var at = Start.AddHours(h);
            var volume = Math.Round(rate / 24 * DeliveryFactor(i), 6);
            level -= volume;
            Add(new DoseDelivered { Seq = ++seq, At = at, From = at.AddHours(-1), VolumeMl = volume, Kind = "basal" }, h);
            if (h % 12 == 0)
            {
                Add(new ReservoirLevelReported { Seq = ++seq, At = at.AddMinutes(1), VolumeMl = Math.Round(level, 4), Source = "measured" }, h);
            }

            if (h % 24 == 0)
            {
                Add(new StatusReported { Seq = ++seq, At = at.AddMinutes(2), BatteryPct = 90 - (h / 24), Motor = "running" }, h);
            }

            if (i % 4 == 1 && h == 30)
            {
                Add(new AlarmRaised { Seq = ++seq, At = at.AddMinutes(3), Code = "LOW_RESERVOIR", Severity = "non-critical" }, h);
            }

            if (i % 4 == 1 && h == 40)
            {
                Add(new AlarmCleared { Seq = ++seq, At = at.AddMinutes(3), Code = "LOW_RESERVOIR" }, h);
            }

            if (i % 7 == 3 && h == 60)
            {
                Add(new AlarmRaised { Seq = ++seq, At = at.AddMinutes(3), Code = "MOTOR_STALL", Severity = "critical" }, h);
            }
        }

        return events;
    }

    /// <summary>Total volume the motor delivered over the whole timeline (all pumps), for loss/double-count checks.</summary>
    public double TotalDeliveredMl() => Enumerable.Range(0, Serials.Count)
        .Sum(i => DeviceEvents(i).OfType<DoseDelivered>().Sum(d => d.VolumeMl));

    /// <summary>Platform anomalies of pump <paramref name="i"/> (every fifth pump has one).</summary>
    public IReadOnlyList<PumpEvent> Anomalies(int i) => i % 5 != 2
        ? []
        : [new AnomalyDetected
        {
            At = Start.AddHours(20), AnomalyId = $"A-{Serials[i]}-flow", Kind = i % 2 == 0 ? "under-infusion" : "flow-stall",
            Severity = i % 10 == 2 ? "critical" : "warning",
            // As long as a detector's summary: the pages must lay it out without widening the screen.
            Summary = $"Test anomaly on {Serials[i]}: delivered volume 40 % below the prescription over the last 12 h "
                + "(expected 0.62 mL, ledger 0.37 mL); check the catheter for occlusion or a kink and compare the reservoir at the next refill",
            Evidence = new Dictionary<string, double> { ["ratio"] = 0.6, ["hours"] = 12 },
        }];

    /// <summary>An ingest batch as the gateway would build it.</summary>
    public IngestBatch Batch(int i, IReadOnlyList<DeviceEvent> events, DateTimeOffset receivedAt, bool withDevice) => new()
    {
        HubId = HubOf(Serials[i]), ReceivedAt = receivedAt, Device = withDevice ? DeviceOf(i) : null, Events = events,
        MessageId = Guid.NewGuid().ToString("N"),
    };

    /// <summary>
    /// Appends pump <paramref name="i"/>'s history (hours in (fromHour, toHour]) straight to the store, as the grain
    /// would have stored it: identification and pairing first, device events, then the pump's anomalies.
    /// </summary>
    public async Task AppendAsync(IEventStore store, int i, int fromHour, int toHour, CancellationToken ct)
    {
        var serial = Serials[i];
        var version = 0L;
        await foreach (var e in store.ReadStreamAsync(serial, 0, ct))
        {
            version = e.Version;
        }

        var received = Start.AddHours(toHour).AddMinutes(10);
        var rows = new List<EventToAppend>();
        if (version == 0)
        {
            rows.Add(Row(new DeviceIdentified { At = Start, Device = DeviceOf(i) }, null, Start));
            rows.Add(Row(new PumpPaired { At = Start, HubId = HubOf(serial), By = "test" }, null, Start));
        }

        rows.AddRange(DeviceEvents(i, fromHour, toHour).Select(e => Row(e, e.Seq, received)));
        if (fromHour < 20 && toHour >= 20)
        {
            rows.AddRange(Anomalies(i).Select(e => Row(e, null, Start.AddHours(20))));
        }

        if (rows.Count > 0)
        {
            await store.AppendAsync(serial, version, rows, ct);
        }
    }

    /// <summary>Appends the whole fleet in waves of <paramref name="waveHours"/>, calling <paramref name="between"/> after each wave.</summary>
    public async Task AppendInWavesAsync(IEventStore store, int waveHours, Func<Task> between, CancellationToken ct)
    {
        for (var from = 0; from < hours; from += waveHours)
        {
            for (var i = 0; i < Serials.Count; i++)
            {
                await AppendAsync(store, i, from, Math.Min(hours, from + waveHours), ct);
            }

            await between();
        }
    }

    private static EventToAppend Row(PumpEvent e, long? seq, DateTimeOffset received) =>
        new(DeterministicId(e, seq), EventTypes.NameOf(e), EventJson.Serialize(e), seq, e is DeviceEvent d ? d.At : null, received, false, null);

    // Event ids only need to be unique per stream; deriving them keeps seeds reproducible.
    private static Guid DeterministicId(PumpEvent e, long? seq)
    {
        var bytes = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"{EventTypes.NameOf(e)}|{seq}|{e.At:O}|{EventJson.Serialize(e)}"));
        return new Guid(bytes.AsSpan(0, 16));
    }
}
