using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.Contracts.Views;

namespace PumpFleet.Silo.Hosting;

/// <summary>Options of the in-process demo feeder.</summary>
public sealed class DemoFleetOptions
{
    /// <summary>Configuration section.</summary>
    public const string SectionName = "PumpFleet:Demo";

    /// <summary>Feed demo pumps straight into the grains (no MQTT). Default: false.</summary>
    public bool Enabled { get; set; }

    /// <summary>Number of demo pumps. Default: 5.</summary>
    [System.ComponentModel.DataAnnotations.Range(1, 10_000)]
    public int Pumps { get; set; } = 5;

    /// <summary>Real time per simulated hour. Default: 200 ms (a simulated day every ~5 s).</summary>
    public TimeSpan RealTimePerSimulatedHour { get; set; } = TimeSpan.FromMilliseconds(200);
}

/// <summary>
/// Feeds a few demo pumps directly into their grains at accelerated event time, so that the platform shows
/// something without any other process: hourly basal doses, daily status and measured levels, refills.
/// </summary>
public sealed partial class DemoFleetFeeder(IGrainFactory grains, Microsoft.Extensions.Options.IOptions<DemoFleetOptions> options, ILogger<DemoFleetFeeder> logger)
    : BackgroundService
{
    private const string HubId = "demo-hub";

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        var rnd = new Random(42);
        var start = new DateTimeOffset(DateTime.UtcNow.Date.AddDays(-30), TimeSpan.Zero);
        var pumps = Enumerable.Range(1, o.Pumps).Select(i => new DemoPump(
            $"DEMO-{i:D3}", i % 2 == 0 ? 40 : 20, 0.2 + (rnd.NextDouble() * 1.0), i % 3 == 0 ? "baclofen" : "morphine")).ToList();
        foreach (var p in pumps)
        {
            await grains.GetGrain<IPumpIngestGrain>(p.Serial).PairAsync(HubId, "demo");
        }

        var t = start;
        var hour = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            foreach (var p in pumps)
            {
                var batch = p.Hour(t, rnd);
                var result = await grains.GetGrain<IPumpIngestGrain>(p.Serial).IngestAsync(new IngestBatch
                {
                    HubId = HubId,
                    ReceivedAt = DateTimeOffset.UtcNow,
                    Device = p.Device,
                    Events = batch,
                });
                p.Acked = result.CommittedSeq;
            }

            t = t.AddHours(1);
            if (++hour % 24 == 0)
            {
                var view = await grains.GetGrain<IPumpQueryGrain>(pumps[0].Serial).GetStateAsync();
                LogDay(t, pumps.Count, view.Serial, view.Status, view.ReservoirMl, view.ForecastEmptyAt);
            }

            await Task.Delay(o.RealTimePerSimulatedHour, stoppingToken);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Demo fleet at {SimTime:u}: {Pumps} pumps fed; {Serial} is {Status}, reservoir {Reservoir:F2} mL, forecast empty {Empty:u}")]
    private partial void LogDay(DateTimeOffset simTime, int pumps, string serial, string status, double? reservoir, DateTimeOffset? empty);

    private sealed class DemoPump(string serial, double capacity, double rate, string drug)
    {
        private long _seq;
        private double _volume = capacity * 0.9;

        public string Serial { get; } = serial;
        public long Acked { get; set; }
        public DeviceInfo Device { get; } = new() { Model = capacity == 40 ? "SM2-40" : "SM2-20", Firmware = "4.2.1", Lot = "L2291", ReservoirCapacityMl = capacity };

        public List<DeviceEvent> Hour(DateTimeOffset t, Random rnd)
        {
            var events = new List<DeviceEvent>();
            if (_seq == 0)
            {
                events.Add(new TherapyPhaseChanged { Seq = ++_seq, At = t, Phase = "implanted", Indication = drug == "baclofen" ? "spasticity" : "cancer-pain" });
                events.Add(new PrescriptionSet
                {
                    Seq = ++_seq, At = t, Drug = drug, Mode = "continuous", RateMlPerDay = Math.Round(rate, 3),
                    Concentration = drug == "baclofen" ? new Concentration { Value = 2000, Unit = "mcg/mL" } : new Concentration { Value = 25, Unit = "mg/mL" },
                    LowReservoirAlarmMl = 4,
                });
                events.Add(new RefillPerformed { Seq = ++_seq, At = t, ExpectedResidualMl = 0, AspiratedResidualMl = 0, AddedMl = _volume, Drug = drug,
                    Concentration = new Concentration { Value = 25, Unit = "mg/mL" } });
            }

            var delivered = rate / 24;
            _volume -= delivered * (1 + ((rnd.NextDouble() - 0.5) * 0.04));
            events.Add(new DoseDelivered { Seq = ++_seq, At = t.AddHours(1), From = t, VolumeMl = Math.Round(delivered, 5), Kind = "basal" });
            if (t.Hour == 0)
            {
                events.Add(new StatusReported { Seq = ++_seq, At = t.AddHours(1), BatteryPct = 80, Motor = "running" });
                events.Add(new ReservoirLevelReported { Seq = ++_seq, At = t.AddHours(1), VolumeMl = Math.Round(Math.Max(0, _volume), 2), Source = "measured" });
            }

            if (_volume < 4.5)
            {
                var residual = Math.Max(0, _volume);
                events.Add(new RefillPerformed { Seq = ++_seq, At = t.AddHours(1), ExpectedResidualMl = Math.Round(residual, 2), AspiratedResidualMl = Math.Round(residual, 2),
                    AddedMl = capacity * 0.9, Drug = drug, Concentration = new Concentration { Value = 25, Unit = "mg/mL" } });
                _volume = capacity * 0.9;
            }

            return events;
        }
    }
}
