using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Orleans.Hosting;
using Orleans.TestingHost;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.Contracts.Json;
using PumpFleet.Domain.Detection;
using PumpFleet.EventStore;
using PumpFleet.Grains;
using PumpFleet.Grains.Detection.Fleet;
using PumpFleet.ReadModels;
using PumpFleet.TestSupport;
using static PumpFleet.Detection.Tests.PumpScript;

namespace PumpFleet.Detection.Tests;

/// <summary>The detectors inside a real PumpGrain, on an in-process silo with a real PostgreSQL event store.</summary>
public sealed class PumpGrainDetectionTests(PostgresFixture pg) : IAsyncLifetime
{
    // PairAsync stamps its event with the wall clock, so the fake clock starts just after it.
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow.AddMinutes(1));
    private PumpCluster _cluster = null!;
    private IEventStore _store = null!;

    public async ValueTask InitializeAsync()
    {
        _cluster = await PumpCluster.StartAsync(await pg.CreateDatabaseAsync("det"), configure: s => s.AddSingleton<TimeProvider>(_time));
        _store = _cluster.SiloServices.GetRequiredService<IEventStore>();
    }

    public async ValueTask DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task Stall_OpensExactlyOneFlowStallAnomalyInTheStore_AndDeliveryResolvesIt()
    {
        var serial = "PG-" + Guid.NewGuid().ToString("N")[..8];
        var grain = _cluster.Grains.GetGrain<IPumpIngestGrain>(serial);
        var feed = await HubFeed.PairAsync(grain, _time);
        Task<IngestResult> Send(params DeviceEvent[] events) => feed.SendAsync(events);

        await Send(Rx(T0, 0.48), Running(T0), Dose(T0, T0.AddHours(1), 0.02));
        await Send(Dose(T0.AddHours(1), T0.AddHours(2), 0));
        await Send(Dose(T0.AddHours(2), T0.AddHours(3), 0), Alarm(T0.AddHours(3), "MOTOR_STALL"));

        var events = await ReadAsync(serial);
        var opened = Assert.Single(events.OfType<AnomalyDetected>());
        Assert.Equal(AnomalyKinds.FlowStall, opened.Kind);
        Assert.Equal(T0.AddHours(2), opened.At);
        var view = await _cluster.Grains.GetGrain<IPumpQueryGrain>(serial).GetStateAsync();
        Assert.Single(view.OpenAnomalies);

        // Reactivation from the store (snapshot + tail) keeps the decision: no duplicate on the next batch.
        await DeactivateAsync(serial);
        await Send(Dose(T0.AddHours(3), T0.AddHours(4), 0));
        Assert.Single((await ReadAsync(serial)).OfType<AnomalyDetected>());

        await Send(Cleared(T0.AddHours(5), "MOTOR_STALL"), Dose(T0.AddHours(4), T0.AddHours(5), 0.02));
        var resolved = Assert.Single((await ReadAsync(serial)).OfType<AnomalyResolved>());
        Assert.Equal(opened.AnomalyId, resolved.AnomalyId);
        Assert.True(resolved.Automatic);
        Assert.Equal("system", resolved.By);
    }

    [Fact]
    public async Task MarkSilent_OpensOnce_AndTheNextBatchResolvesIt()
    {
        var serial = "PG-" + Guid.NewGuid().ToString("N")[..8];
        var grain = _cluster.Grains.GetGrain<IPumpIngestGrain>(serial);
        await grain.PairAsync("H-1", "test");
        var device = new DeviceInfo { Model = "SM2-20", Firmware = "4.2.1", Lot = "L1", ReservoirCapacityMl = 20 };
        await grain.IngestAsync(new IngestBatch { HubId = "H-1", ReceivedAt = _time.GetUtcNow(), Device = device, Events = [Rx(T0, 0.48) with { Seq = 1 }] });
        var lastSeen = (await _cluster.Grains.GetGrain<IPumpQueryGrain>(serial).GetStateAsync()).LastSeenAt!.Value;
        var received = _time.GetUtcNow();
        Assert.Equal(received.AddTicks(-(received.UtcTicks % 10)), lastSeen);   // to the microsecond, as the store keeps it

        _time.Advance(TimeSpan.FromHours(30));
        var monitor = _cluster.Grains.GetGrain<IPumpMonitorGrain>(serial);
        Assert.True(await monitor.MarkSilentAsync(lastSeen, TimeSpan.FromHours(24)));
        Assert.False(await monitor.MarkSilentAsync(lastSeen, TimeSpan.FromHours(24)));
        var opened = Assert.Single((await ReadAsync(serial)).OfType<AnomalyDetected>());
        Assert.Equal(AnomalyKinds.Silent, opened.Kind);
        Assert.Equal(30, opened.Evidence["silentHours"], 1);
        Assert.Equal(_time.GetUtcNow(), opened.At);

        await grain.IngestAsync(new IngestBatch { HubId = "H-1", ReceivedAt = _time.GetUtcNow(), Events = [Status(T0.AddDays(1), pct: 80) with { Seq = 2 }] });
        Assert.Equal(opened.AnomalyId, Assert.Single((await ReadAsync(serial)).OfType<AnomalyResolved>()).AnomalyId);
    }

    [Fact]
    public async Task SilentPumpMonitor_QueriesTheReadModel_AndOpensSilentOnlyForPumpsPastTheWindow()
    {
        var quiet = "PG-" + Guid.NewGuid().ToString("N")[..8];
        var chatty = "PG-" + Guid.NewGuid().ToString("N")[..8];
        var device = new DeviceInfo { Model = "SM2-20", Firmware = "4.2.1", Lot = "L1", ReservoirCapacityMl = 20 };
        foreach (var serial in new[] { quiet, chatty })
        {
            var g = _cluster.Grains.GetGrain<IPumpIngestGrain>(serial);
            await g.PairAsync("H-1", "test");
            await g.IngestAsync(new IngestBatch { HubId = "H-1", ReceivedAt = _time.GetUtcNow(), Device = device, Events = [Rx(T0, 0.48) with { Seq = 1 }] });
        }

        var quietSeen = _time.GetUtcNow();
        _time.Advance(TimeSpan.FromHours(25));
        var ds = _cluster.SiloServices.GetRequiredService<Npgsql.NpgsqlDataSource>();
        await using (var cmd = ds.CreateCommand(ReadModelDdl + """
            INSERT INTO pf_pump_status VALUES (@q, 'H-1', @qs, 'ok'), (@c, 'H-1', @cs, 'ok'), ('GONE', 'H-1', @qs, 'inactive');
            """))
        {
            cmd.Parameters.AddWithValue("q", quiet);
            cmd.Parameters.AddWithValue("c", chatty);
            cmd.Parameters.AddWithValue("qs", quietSeen);
            cmd.Parameters.AddWithValue("cs", _time.GetUtcNow().AddHours(-1));
            await cmd.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        }

        var monitor = new SilentPumpMonitor(ds, _cluster.Grains, Microsoft.Extensions.Options.Options.Create(new AnomalyDetectionOptions()), _time,
            Microsoft.Extensions.Logging.Abstractions.NullLogger<SilentPumpMonitor>.Instance);
        Assert.Equal(1, await monitor.CheckOnceAsync(TestContext.Current.CancellationToken));
        Assert.Equal(0, await monitor.CheckOnceAsync(TestContext.Current.CancellationToken));
        Assert.Single((await ReadAsync(quiet)).OfType<AnomalyDetected>(), a => a.Kind == AnomalyKinds.Silent);
        Assert.DoesNotContain((await ReadAsync(chatty)).OfType<AnomalyDetected>(), a => a.Kind == AnomalyKinds.Silent);
    }

    // The columns of the projections' read models that the fleet monitor reads (src/Projections/Sql/020_read_models.sql).
    private const string ReadModelDdl = """
        CREATE TABLE IF NOT EXISTS pf_pump_status (serial text PRIMARY KEY, hub_id text, last_seen_at timestamptz, status text, next_refill_due_at timestamptz,
            refill_due_day date GENERATED ALWAYS AS ((next_refill_due_at AT TIME ZONE 'UTC')::date) STORED);
        CREATE TABLE IF NOT EXISTS pf_anomalies (id text PRIMARY KEY, serial text NOT NULL, kind text NOT NULL, severity text NOT NULL, status text NOT NULL);

        """;

    [Fact]
    public async Task SilentPumpMonitor_PagesThroughEverySilentPump_AndSkipsTheFlaggedOnes()
    {
        // Many silent pumps ahead of the real one (oldest first), pages of 10: the real one is only found by paging.
        var quiet = "PG-" + Guid.NewGuid().ToString("N")[..8];
        var g = _cluster.Grains.GetGrain<IPumpIngestGrain>(quiet);
        await g.PairAsync("H-1", "test");
        await g.IngestAsync(new IngestBatch
        {
            HubId = "H-1", ReceivedAt = _time.GetUtcNow(), Device = new DeviceInfo { Model = "SM2-20", Firmware = "4.2.1", Lot = "L1", ReservoirCapacityMl = 20 },
            Events = [Rx(T0, 0.48) with { Seq = 1 }],
        });
        var seen = _time.GetUtcNow();
        _time.Advance(TimeSpan.FromHours(25));
        var prefix = "FLAG-" + Guid.NewGuid().ToString("N")[..6];
        var ds = _cluster.SiloServices.GetRequiredService<Npgsql.NpgsqlDataSource>();
        await using (var cmd = ds.CreateCommand(ReadModelDdl + """
            INSERT INTO pf_pump_status (serial, hub_id, last_seen_at, status)
                SELECT @p || '-' || i, 'H-1', @old + i * interval '1 second', 'ok' FROM generate_series(1, 35) i;
            INSERT INTO pf_pump_status (serial, hub_id, last_seen_at, status) VALUES (@q, 'H-1', @seen, 'ok');
            INSERT INTO pf_anomalies SELECT @p || '-' || i || ':silent', @p || '-' || i, 'silent', 'warning', 'open' FROM generate_series(1, 35) i;
            """))
        {
            cmd.Parameters.AddWithValue("p", prefix);
            cmd.Parameters.AddWithValue("old", seen.AddDays(-3));
            cmd.Parameters.AddWithValue("q", quiet);
            cmd.Parameters.AddWithValue("seen", seen);
            await cmd.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        }

        var monitor = new SilentPumpMonitor(ds, _cluster.Grains, Microsoft.Extensions.Options.Options.Create(new AnomalyDetectionOptions { MonitorPageSize = 10 }), _time,
            Microsoft.Extensions.Logging.Abstractions.NullLogger<SilentPumpMonitor>.Instance);
        Assert.Equal(1, await monitor.CheckOnceAsync(TestContext.Current.CancellationToken));
        Assert.Single((await ReadAsync(quiet)).OfType<AnomalyDetected>(), a => a.Kind == AnomalyKinds.Silent);

        // The flagged pumps were never handed to a grain: their streams are still empty.
        Assert.Empty(await ReadAsync(prefix + "-1"));
    }

    [Fact]
    public async Task SilentBaclofenPump_RaisesDepletionRiskOnTime_BeforeItEmpties_WithNoData()
    {
        var serial = "PG-" + Guid.NewGuid().ToString("N")[..8];
        var grain = _cluster.Grains.GetGrain<IPumpIngestGrain>(serial);
        await grain.PairAsync("H-1", "test");
        var t = _time.GetUtcNow();

        // 10 mL of baclofen at 2 mL/day, low-reservoir level 2 mL: 4 days to the threshold, 5 to empty; the
        // 72 h horizon is not reached yet, so the last batch opens nothing.
        await grain.IngestAsync(new IngestBatch
        {
            HubId = "H-1", ReceivedAt = t, Device = new DeviceInfo { Model = "SM2-20", Firmware = "4.2.1", Lot = "L1", ReservoirCapacityMl = 20 },
            Events = [Rx(t.AddHours(-1), 2, drug: "baclofen", lowAlarm: 2) with { Seq = 1 }, Refill(t.AddHours(-1), 0, 0, 10, drug: "baclofen") with { Seq = 2 }, Running(t.AddHours(-1)) with { Seq = 3 }],
        });
        var view = await _cluster.Grains.GetGrain<IPumpQueryGrain>(serial).GetStateAsync();
        Assert.Empty(view.OpenAnomalies);
        var emptyAt = view.ForecastEmptyAt!.Value;

        var ds = _cluster.SiloServices.GetRequiredService<Npgsql.NpgsqlDataSource>();
        await using (var cmd = ds.CreateCommand(ReadModelDdl + "INSERT INTO pf_pump_status (serial, hub_id, last_seen_at, status, next_refill_due_at) VALUES (@s, 'H-1', @seen, 'ok', @due);"))
        {
            cmd.Parameters.AddWithValue("s", serial);
            cmd.Parameters.AddWithValue("seen", view.LastSeenAt!.Value);
            cmd.Parameters.AddWithValue("due", view.NextRefillDueAt!.Value);
            await cmd.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        }

        var monitor = new SilentPumpMonitor(ds, _cluster.Grains, Microsoft.Extensions.Options.Options.Create(new AnomalyDetectionOptions()), _time,
            Microsoft.Extensions.Logging.Abstractions.NullLogger<SilentPumpMonitor>.Instance);

        // Silent for 12 h: still more than the horizon away (3.5 days to the threshold).
        _time.Advance(TimeSpan.FromHours(12));
        await monitor.ReevaluateOnceAsync(TestContext.Current.CancellationToken);
        Assert.DoesNotContain((await ReadAsync(serial)).OfType<AnomalyDetected>(), a => a.Kind == AnomalyKinds.DepletionRisk);

        // Silent for 30 h, no data at all: the ledger says 7.4 mL left, 2.7 days to the threshold: critical for baclofen.
        _time.Advance(TimeSpan.FromHours(18));
        Assert.Equal(1, await monitor.ReevaluateOnceAsync(TestContext.Current.CancellationToken));
        var risk = Assert.Single((await ReadAsync(serial)).OfType<AnomalyDetected>(), a => a.Kind == AnomalyKinds.DepletionRisk);
        Assert.Equal("critical", risk.Severity);
        Assert.Equal(_time.GetUtcNow(), risk.At);
        Assert.True(emptyAt - risk.At >= TimeSpan.FromHours(24), $"raised {emptyAt - risk.At} before empty");
        Assert.Equal(31, risk.Evidence["hoursWithoutData"], 0);   // since the last event (1 h before the last batch)
    }

    private async Task DeactivateAsync(string serial)
    {
        // Deactivation is awaited through the management extension, so the next call re-reads the stream.
        var grain = _cluster.Grains.GetGrain<IPumpQueryGrain>(serial);
        await grain.Cast<Orleans.Core.Internal.IGrainManagementExtension>().DeactivateOnIdle();
    }

    private async Task<List<PumpEvent>> ReadAsync(string serial)
    {
        var list = new List<PumpEvent>();
        await foreach (var e in _store.ReadStreamAsync(serial, 0, TestContext.Current.CancellationToken))
        {
            list.Add(EventJson.Deserialize(e.Type, e.Data));
        }

        return list;
    }
}
