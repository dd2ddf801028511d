using PumpFleet.Contracts.Events;
using PumpFleet.Domain.Detection;
using PumpFleet.Domain.Pumps;

namespace PumpFleet.Detection.Tests;

/// <summary>
/// Drives a <see cref="PumpState"/> the way <c>PumpGrain</c> does, without a cluster: device events are folded,
/// then <see cref="AnomalyEngine.Evaluate"/> decides and its events are folded too. Every event is kept, so tests
/// can replay them.
/// </summary>
internal sealed class PumpScript
{
    public static readonly DateTimeOffset T0 = new(2026, 3, 1, 0, 0, 0, TimeSpan.Zero);

    private long _seq;

    public PumpScript(string serial = "P-1", double capacityMl = 20, AnomalyDetectionOptions? options = null)
    {
        Options = options ?? new AnomalyDetectionOptions();
        State = new PumpState { Serial = serial };
        Now = T0;
        Platform(new PumpPaired { At = T0, HubId = "H-1", By = "test" });
        Platform(new DeviceIdentified { At = T0, Device = new DeviceInfo { Model = "SM2-20", Firmware = "4.2.1", Lot = "L1", ReservoirCapacityMl = capacityMl } });
    }

    public AnomalyDetectionOptions Options { get; }

    public PumpState State { get; }

    public DateTimeOffset Now { get; set; }

    /// <summary>When set, the receive time of everything applied (a backlog arriving at once); else <see cref="Now"/>.</summary>
    public DateTimeOffset? ReceiveAt { get; set; }

    /// <summary>Every event applied, with its envelope, in order.</summary>
    public List<(PumpEvent Event, EventEnvelope Envelope)> Log { get; } = [];

    /// <summary>Every anomaly event the engine produced.</summary>
    public List<PumpEvent> Decisions { get; } = [];

    public IEnumerable<AnomalyDetected> Opened(string kind) => Decisions.OfType<AnomalyDetected>().Where(d => d.Kind == kind);

    public AnomalyRecord? Open(string kind) => State.Anomalies.Values.SingleOrDefault(a => a.Kind == kind);

    public void Platform(PumpEvent e) => Apply(e, null, false);

    /// <summary>Folds one device event (seq assigned) and then runs the engine, like a one-event batch.</summary>
    public IReadOnlyList<PumpEvent> Device(DeviceEvent e, bool clockSuspect = false)
    {
        var stamped = e with { Seq = ++_seq };
        Apply(stamped, stamped.Seq, clockSuspect);
        return Detect();
    }

    /// <summary>Folds several device events, then runs the engine once (one batch).</summary>
    public IReadOnlyList<PumpEvent> Batch(params DeviceEvent[] events)
    {
        foreach (var e in events)
        {
            var stamped = e with { Seq = ++_seq };
            Apply(stamped, stamped.Seq, false);
        }

        return Detect();
    }

    /// <summary>Leaves the next seq out (an event still in transit) and records the gap, as the planner does.</summary>
    public long Skip()
    {
        var seq = ++_seq;
        Platform(new GapRecorded { At = Now, FromSeq = seq, ToSeq = seq });
        return seq;
    }

    /// <summary>Delivers an event held back by <see cref="Skip"/> with its own seq, then runs the engine.</summary>
    public IReadOnlyList<PumpEvent> Late(DeviceEvent e, long seq)
    {
        Apply(e with { Seq = seq }, seq, false);
        return Detect();
    }

    public IReadOnlyList<PumpEvent> Detect()
    {
        var decided = AnomalyEngine.Evaluate(State, Options);
        foreach (var d in decided)
        {
            Platform(d);
        }

        Decisions.AddRange(decided);
        return decided;
    }

    private void Apply(PumpEvent e, long? seq, bool suspect)
    {
        var env = new EventEnvelope(State.Version + 1, seq, ReceiveAt ?? Now, suspect);
        State.Apply(e, env);
        Log.Add((e, env));
    }

    // Builders with placeholder seq (replaced on apply).
    public static PrescriptionSet Rx(DateTimeOffset at, double rate, string drug = "morphine", double? lowAlarm = null) => new()
    {
        Seq = 0, At = at, Drug = drug, Concentration = Strength(drug), Mode = "continuous",
        RateMlPerDay = rate, LowReservoirAlarmMl = lowAlarm,
    };

    // A strength that keeps the scripts' rates (up to 2 mL/day) within the drug's labelled daily maximum, so the
    // refill-safety checks stay quiet unless a test means them: baclofen 0.4 mg/mL (≤ 800 mcg/day), else 10 mg/mL.
    public static Concentration Strength(string drug) =>
        drug.Contains("baclofen", StringComparison.OrdinalIgnoreCase)
            ? new Concentration { Value = 0.4, Unit = "mg/mL" }
            : new Concentration { Value = 10, Unit = "mg/mL" };

    public static DeliveryStateChanged Running(DateTimeOffset at) => new() { Seq = 0, At = at, State = "running" };

    public static DeliveryStateChanged Stopped(DateTimeOffset at, string reason) => new() { Seq = 0, At = at, State = "stopped", Reason = reason };

    public static DoseDelivered Dose(DateTimeOffset from, DateTimeOffset to, double ml, string kind = "basal") =>
        new() { Seq = 0, At = to, From = from, VolumeMl = ml, Kind = kind };

    public static ReservoirLevelReported Measured(DateTimeOffset at, double ml) => new() { Seq = 0, At = at, VolumeMl = ml, Source = "measured" };

    public static RefillPerformed Refill(DateTimeOffset at, double expected, double aspirated, double added, string drug = "morphine") => new()
    {
        Seq = 0, At = at, ExpectedResidualMl = expected, AspiratedResidualMl = aspirated, AddedMl = added, Drug = drug,
        Concentration = Strength(drug),
    };

    public static AlarmRaised Alarm(DateTimeOffset at, string code, string severity = "critical") => new() { Seq = 0, At = at, Code = code, Severity = severity };

    public static AlarmCleared Cleared(DateTimeOffset at, string code) => new() { Seq = 0, At = at, Code = code };

    public static StatusReported Status(DateTimeOffset at, double? pct = null, string? motor = null) => new() { Seq = 0, At = at, BatteryPct = pct, Motor = motor };

    /// <summary>
    /// A sensor pump at <paramref name="rate"/> mL/day: hourly basal reports of exactly the programmed volume, and a
    /// measured level every 6 h of the true reservoir (consumption × (1 + <paramref name="deviation"/>(day))) plus
    /// Gaussian noise. Returns the script after <paramref name="days"/> days.
    /// </summary>
    public void RunSensorPump(double days, double rate, Func<double, double> deviation, double noiseSd, Random rng, double startLevel = 19)
    {
        var trueLevel = startLevel;
        var start = Now;
        var hours = (int)(days * 24);
        for (var h = 1; h <= hours; h++)
        {
            var from = start.AddHours(h - 1);
            var to = start.AddHours(h);
            Now = to;
            var motor = rate / 24;
            trueLevel -= motor * (1 + deviation((to - T0).TotalDays));
            var batch = new List<DeviceEvent> { Dose(from, to, motor) };
            if (h % 6 == 0)
            {
                batch.Add(Measured(to, Math.Round(Math.Max(0, trueLevel + Gaussian(rng, noiseSd)), 3)));
            }

            Batch([.. batch]);
        }
    }

    public void Start(double rate, string drug = "morphine", double level = 19, double? lowAlarm = null)
    {
        Batch(
            new TherapyPhaseChanged { Seq = 0, At = Now, Phase = "implanted" },
            Rx(Now, rate, drug, lowAlarm),
            Refill(Now, 0, 0, level, drug),
            Running(Now));
    }

    public static double Gaussian(Random r, double sd)
    {
        var u1 = 1.0 - r.NextDouble();
        var u2 = r.NextDouble();
        return sd * Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }
}
