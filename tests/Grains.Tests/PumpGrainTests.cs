using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.TestSupport;
using static PumpFleet.Grains.Tests.Ev;

namespace PumpFleet.Grains.Tests;

/// <summary>One cluster over one database for the whole class; every test uses its own pump serial.</summary>
public sealed class PumpClusterFixture(PostgresFixture pg) : IAsyncLifetime
{
    public PumpCluster Cluster { get; private set; } = null!;

    public async ValueTask InitializeAsync() =>
        Cluster = await PumpCluster.StartAsync(await pg.CreateDatabaseAsync("grain"), configure: s =>
            s.Configure<Pumps.PumpGrainOptions>(o => o.SnapshotEvery = 10));

    public async ValueTask DisposeAsync() => await Cluster.DisposeAsync();
}

public sealed class PumpGrainTests(PumpClusterFixture fx) : IClassFixture<PumpClusterFixture>
{
    private static string NewSerial() => "SN" + Guid.NewGuid().ToString("N")[..10];

    private static IngestBatch Batch(DateTimeOffset received, params DeviceEvent[] events) =>
        new() { HubId = "H1", ReceivedAt = received, Device = Device20, Events = events };

    private async Task<IPumpIngestGrain> PairedAsync(string serial)
    {
        var g = fx.Cluster.Grains.GetGrain<IPumpIngestGrain>(serial);
        await g.PairAsync("H1", "test");
        return g;
    }

    private async Task<long> CountStoredAsync(string serial)
    {
        await using var ds = NpgsqlDataSource.Create(fx.Cluster.ConnectionString);
        await using var cmd = ds.CreateCommand("SELECT count(*) FROM pf_events WHERE stream_id = $1 AND seq IS NOT NULL");
        cmd.Parameters.Add(new() { Value = serial });
        return (long)(await cmd.ExecuteScalarAsync(TestContext.Current.CancellationToken))!;
    }

    [Fact]
    public async Task Ingest_StoresEvents_AndReturnsCommittedSeq()
    {
        var serial = NewSerial();
        var g = await PairedAsync(serial);
        var r = await g.IngestAsync(Batch(T0.AddDays(1), Continuous(1, T0, 0.5), Refill(2, T0, 18), Dose(3, T0, T0.AddHours(1), 0.02)));

        Assert.Equal(3, r.CommittedSeq);
        Assert.Equal(3, r.Stored);
        Assert.Empty(r.Rejections);
        var view = await fx.Cluster.Grains.GetGrain<IPumpQueryGrain>(serial).GetStateAsync();
        Assert.Equal(("SM2-20", "morphine", "H1"), (view.Model, view.Drug, view.HubId));
        Assert.Equal(17.98, view.ReservoirMl!.Value, 6);
        Assert.Equal(3, await CountStoredAsync(serial));
    }

    [Fact]
    public async Task Ingest_ResentBatch_IsStoredOnce()
    {
        var serial = NewSerial();
        var g = await PairedAsync(serial);
        var batch = Batch(T0.AddDays(1), Continuous(1, T0, 0.5), Dose(2, T0, T0.AddHours(1), 0.02));
        await g.IngestAsync(batch);

        var again = await g.IngestAsync(batch);

        Assert.Equal((2L, 0, 2), (again.CommittedSeq, again.Stored, again.Duplicates));
        Assert.Equal(2, await CountStoredAsync(serial));
    }

    [Fact]
    public async Task Ingest_GapThenLateFill_RecordsGapAndAcceptsFill()
    {
        var serial = NewSerial();
        var g = await PairedAsync(serial);
        await g.IngestAsync(Batch(T0.AddDays(1), Continuous(1, T0, 0.5), Dose(4, T0.AddHours(3), T0.AddHours(4), 0.02)));
        var q = fx.Cluster.Grains.GetGrain<IPumpQueryGrain>(serial);
        Assert.Equal([new Contracts.Views.SeqRange(2, 3)], (await q.GetStateAsync()).Gaps);

        var fill = await g.IngestAsync(Batch(T0.AddDays(2), Dose(2, T0, T0.AddHours(1), 0.02), Dose(3, T0.AddHours(1), T0.AddHours(2), 0.02)));

        Assert.Equal((4L, 2), (fill.CommittedSeq, fill.Stored));
        Assert.Empty((await q.GetStateAsync()).Gaps);
        Assert.Equal(4, await CountStoredAsync(serial));
    }

    [Fact]
    public async Task Ingest_InvalidEvents_AreRefusedWithReason_AndValidOnesStored()
    {
        var serial = NewSerial();
        var g = await PairedAsync(serial);
        var r = await g.IngestAsync(Batch(T0.AddDays(1), Dose(1, T0, T0.AddHours(1), -1), Refill(2, T0, 50), Dose(3, T0, T0.AddHours(1), 0.02)));

        Assert.Equal([(1L, RejectionCodes.NegativeVolume), (2L, RejectionCodes.DomainRule)], r.Rejections.Select(x => (x.Seq!.Value, x.Code)));
        Assert.All(r.Rejections, x => Assert.False(string.IsNullOrWhiteSpace(x.Reason)));
        Assert.Equal(3, r.CommittedSeq);
        Assert.Equal(1, await CountStoredAsync(serial));
    }

    [Fact]
    public async Task Ingest_UnpairedPump_IsRefusedAndNothingStored()
    {
        var serial = NewSerial();
        var r = await fx.Cluster.Grains.GetGrain<IPumpIngestGrain>(serial).IngestAsync(Batch(T0.AddDays(1), Dose(1, T0, T0.AddHours(1), 0.02)));
        Assert.Equal(RejectionCodes.NotPaired, Assert.Single(r.Rejections).Code);
        Assert.Equal(0, r.CommittedSeq);
        Assert.Equal(0, await CountStoredAsync(serial));
    }

    [Fact]
    public async Task Reactivation_FromSnapshotAndTail_GivesIdenticalState()
    {
        var serial = NewSerial();
        var g = await PairedAsync(serial);
        var t = T0;
        long seq = 0;
        await g.IngestAsync(Batch(t, Continuous(++seq, t, 0.48), Refill(++seq, t, 19)));
        for (var h = 0; h < 30; h++)
        {
            // 30 batches → several snapshots (every 10 events) plus a tail.
            await g.IngestAsync(Batch(t.AddHours(h + 1), Dose(++seq, t.AddHours(h), t.AddHours(h + 1), 0.02),
                h % 7 == 0 ? Level(++seq, t.AddHours(h + 1), 19 - (0.02 * h)) : new StatusReported { Seq = ++seq, At = t.AddHours(h + 1), BatteryPct = 90 - h }));
        }

        var q = fx.Cluster.Grains.GetGrain<IPumpQueryGrain>(serial);
        var before = JsonSerializer.Serialize(await q.GetStateAsync());
        await fx.Cluster.Cluster.DeactivateAsync(g);
        var after = JsonSerializer.Serialize(await q.GetStateAsync());

        Assert.Equal(before, after);
        await using var ds = NpgsqlDataSource.Create(fx.Cluster.ConnectionString);
        await using var cmd = ds.CreateCommand("SELECT version FROM pf_snapshots WHERE stream_id = $1");
        cmd.Parameters.Add(new() { Value = serial });
        Assert.True((long)(await cmd.ExecuteScalarAsync(TestContext.Current.CancellationToken))! >= 10);
    }

    private async Task<(long? SnapshotVersion, long StreamVersion)> VersionsAsync(string serial)
    {
        await using var ds = NpgsqlDataSource.Create(fx.Cluster.ConnectionString);
        await using var cmd = ds.CreateCommand("""
            SELECT (SELECT version FROM pf_snapshots WHERE stream_id = $1), (SELECT max(version) FROM pf_events WHERE stream_id = $1)
            """);
        cmd.Parameters.Add(new() { Value = serial });
        await using var r = await cmd.ExecuteReaderAsync(TestContext.Current.CancellationToken);
        await r.ReadAsync(TestContext.Current.CancellationToken);
        return (await r.IsDBNullAsync(0, TestContext.Current.CancellationToken) ? null : r.GetInt64(0), r.GetInt64(1));
    }

    // Deactivates the pump and reads it again: the activation's load (snapshot and tail in one statement) must give
    // the state the live activation had.
    private async Task AssertReactivationKeepsStateAsync(IPumpIngestGrain g, string serial)
    {
        var q = fx.Cluster.Grains.GetGrain<IPumpQueryGrain>(serial);
        var before = JsonSerializer.Serialize(await q.GetStateAsync());
        await fx.Cluster.Cluster.DeactivateAsync(g);
        Assert.Equal(before, JsonSerializer.Serialize(await q.GetStateAsync()));
    }

    [Fact]
    public async Task Reactivation_WithoutSnapshot_FoldsEveryEvent()
    {
        var serial = NewSerial();
        var g = await PairedAsync(serial);
        await g.IngestAsync(Batch(T0.AddHours(1), Continuous(1, T0, 0.5), Refill(2, T0, 18), Dose(3, T0, T0.AddHours(1), 0.02)));
        Assert.Null((await VersionsAsync(serial)).SnapshotVersion);

        await AssertReactivationKeepsStateAsync(g, serial);
    }

    [Fact]
    public async Task Reactivation_FromSnapshotWithNoLaterEvents_GivesIdenticalState()
    {
        var serial = NewSerial();
        var g = await PairedAsync(serial);
        // Pairing plus 9 events reach SnapshotEvery (10): the snapshot is written with the append that reaches it.
        await g.IngestAsync(Batch(T0.AddHours(9), [Continuous(1, T0, 0.5), Refill(2, T0, 18), .. Enumerable.Range(0, 7).Select(h => Dose(3 + h, T0.AddHours(h), T0.AddHours(h + 1), 0.02))]));
        var (snapshot, head) = await VersionsAsync(serial);
        Assert.Equal(head, snapshot);

        await AssertReactivationKeepsStateAsync(g, serial);
    }

    [Fact]
    public async Task Reactivation_WithAnOldSchemaSnapshot_RebuildsFromEvents()
    {
        var serial = NewSerial();
        var g = await PairedAsync(serial);
        await g.IngestAsync(Batch(T0.AddHours(9), [Continuous(1, T0, 0.5), Refill(2, T0, 18), .. Enumerable.Range(0, 7).Select(h => Dose(3 + h, T0.AddHours(h), T0.AddHours(h + 1), 0.02))]));
        await g.IngestAsync(Batch(T0.AddHours(10), Dose(10, T0.AddHours(9), T0.AddHours(10), 0.02)));
        await using (var ds = NpgsqlDataSource.Create(fx.Cluster.ConnectionString))
        {
            // A snapshot of an older fold, whose state this build could not read: it must be ignored, not parsed.
            await using var cmd = ds.CreateCommand("UPDATE pf_snapshots SET schema_version = $2, state = '{\"serial\": 42}' WHERE stream_id = $1");
            cmd.Parameters.Add(new() { Value = serial });
            cmd.Parameters.Add(new() { Value = Domain.Pumps.PumpState.SchemaVersion - 1 });
            Assert.Equal(1, await cmd.ExecuteNonQueryAsync(TestContext.Current.CancellationToken));
        }

        await AssertReactivationKeepsStateAsync(g, serial);
    }

    [Fact]
    public async Task GetStateAsOf_RebuildsStateAtThatEventTime()
    {
        var serial = NewSerial();
        var g = await PairedAsync(serial);
        await g.IngestAsync(Batch(T0.AddDays(1), Continuous(1, T0, 1.0), Refill(2, T0, 20), Dose(3, T0, T0.AddDays(1), 1.0)));
        await g.IngestAsync(Batch(T0.AddDays(6), Dose(4, T0.AddDays(1), T0.AddDays(5), 4.0),
            new AlarmRaised { Seq = 5, At = T0.AddDays(5), Code = "LOW_RESERVOIR", Severity = "non-critical" }));
        var q = fx.Cluster.Grains.GetGrain<IPumpQueryGrain>(serial);

        var atDay2 = await q.GetStateAsOfAsync(T0.AddDays(2));
        var now = await q.GetStateAsync();

        Assert.Equal((19.0, 3L), (atDay2.ReservoirMl!.Value, atDay2.LastSeq));
        Assert.Empty(atDay2.ActiveAlarms);
        Assert.Equal((15.0, 5L), (now.ReservoirMl!.Value, now.LastSeq));
        Assert.Single(now.ActiveAlarms);
    }

    [Fact]
    public async Task GetStateAsOf_OfABacklogUploadedAfterPairing_ShowsDeviceAndHub_FromAStatelessReader()
    {
        // Paired now (wall time); the hub uploads a backlog from weeks ago: as of the backlog's own time the view has
        // the device and hub it was stored under, in event time.
        var serial = NewSerial();
        var g = await PairedAsync(serial);
        await g.IngestAsync(Batch(T0.AddDays(30), Continuous(1, T0, 1.0), Refill(2, T0, 20), Dose(3, T0, T0.AddDays(1), 1.0), Dose(4, T0.AddDays(1), T0.AddDays(2), 1.0)));

        await using var ds = NpgsqlDataSource.Create(fx.Cluster.ConnectionString);
        var reader = new Pumps.PumpAsOfReader(new EventStore.NpgsqlEventStore(ds));
        var view = await reader.ReadAsync(serial, T0.AddDays(1), TestContext.Current.CancellationToken);

        Assert.Equal(("H1", "SM2-20", 3L), (view.HubId, view.Model, view.LastSeq));
        Assert.Equal(19.0, view.ReservoirMl!.Value, 9);
        Assert.Equal(view, await fx.Cluster.Grains.GetGrain<IPumpQueryGrain>(serial).GetStateAsOfAsync(T0.AddDays(1)), PumpViewComparer.Instance);
        var before = await reader.ReadAsync(serial, T0.AddDays(-1), TestContext.Current.CancellationToken);
        Assert.Equal((0L, (double?)null), (before.LastSeq, before.ReservoirMl));
    }

    [Fact]
    public async Task Anomaly_AcknowledgeThenResolve_AreEvents()
    {
        var serial = NewSerial();
        var g = await PairedAsync(serial);
        var anomalies = fx.Cluster.Grains.GetGrain<IPumpAnomalyGrain>(serial);
        Assert.False(await anomalies.AcknowledgeAnomalyAsync("nope", "dr.x", null));

        // The detectors are not part of this test: the anomaly is appended as a stored event directly.
        await using (var ds = NpgsqlDataSource.Create(fx.Cluster.ConnectionString))
        {
            var store = new EventStore.NpgsqlEventStore(ds);
            var version = (await fx.Cluster.Grains.GetGrain<IPumpQueryGrain>(serial).GetStateAsync()).Version;
            var evt = new AnomalyDetected { At = T0, AnomalyId = "an-1", Kind = "flow-stall", Severity = "critical", Summary = "no delivery", Evidence = new Dictionary<string, double> { ["hours"] = 3 } };
            await store.AppendAsync(serial, version, [new EventStore.EventToAppend(Guid.NewGuid(), "anomaly.detected", Contracts.Json.EventJson.Serialize(evt), null, null, T0)], TestContext.Current.CancellationToken);
            await fx.Cluster.Cluster.DeactivateAsync(g);
        }

        Assert.True(await anomalies.AcknowledgeAnomalyAsync("an-1", "dr.x", "on it"));
        Assert.False(await anomalies.AcknowledgeAnomalyAsync("an-1", "dr.x", "again"));
        var open = Assert.Single((await fx.Cluster.Grains.GetGrain<IPumpQueryGrain>(serial).GetStateAsync()).OpenAnomalies);
        Assert.Equal(("acknowledged", "dr.x"), (open.Status, open.AcknowledgedBy));
        Assert.True(await anomalies.ResolveAnomalyAsync("an-1", "dr.x", "fixed"));
        Assert.Empty((await fx.Cluster.Grains.GetGrain<IPumpQueryGrain>(serial).GetStateAsync()).OpenAnomalies);
    }
}

/// <summary>Compares views by their JSON (records with lists compare lists by reference).</summary>
internal sealed class PumpViewComparer : IEqualityComparer<Contracts.Views.PumpView>
{
    public static readonly PumpViewComparer Instance = new();

    public bool Equals(Contracts.Views.PumpView? x, Contracts.Views.PumpView? y) =>
        JsonSerializer.Serialize(x) == JsonSerializer.Serialize(y);

    public int GetHashCode(Contracts.Views.PumpView obj) => JsonSerializer.Serialize(obj).GetHashCode(StringComparison.Ordinal);
}
