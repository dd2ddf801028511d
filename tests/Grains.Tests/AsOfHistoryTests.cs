using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.Domain.Pumps;
using PumpFleet.EventStore;
using PumpFleet.Grains.Pumps;
using PumpFleet.TestSupport;
using static PumpFleet.Grains.Tests.Ev;

namespace PumpFleet.Grains.Tests;

/// <summary>A cluster that keeps a snapshot in the history every 100 events (and the latest every 10).</summary>
public sealed class HistoryClusterFixture(PostgresFixture pg) : IAsyncLifetime
{
    public const int HistoryEvery = 100;
    public const int SnapshotEvery = 10;

    public PumpCluster Cluster { get; private set; } = null!;

    public async ValueTask InitializeAsync() =>
        Cluster = await PumpCluster.StartAsync(await pg.CreateDatabaseAsync("asof"), configure: s =>
            s.Configure<PumpGrainOptions>(o =>
            {
                o.SnapshotEvery = SnapshotEvery;
                o.SnapshotHistoryEvery = HistoryEvery;
            }));

    public async ValueTask DisposeAsync() => await Cluster.DisposeAsync();
}

/// <summary>
/// As-of views served from kept snapshots: on a long stream delivered partly out of order, every as-of read equals a
/// fold of the whole stream to that time, and reads one kept snapshot plus a bounded number of events.
/// </summary>
public sealed class AsOfHistoryTests(HistoryClusterFixture fx) : IClassFixture<HistoryClusterFixture>
{
    private const int BatchHours = 12;

    [Theory]
    [InlineData(1313)]
    [InlineData(2027)]
    public async Task AsOf_FromKeptSnapshots_EqualsAFullFold_AndReadsABoundedTail(int seed)
    {
        var rng = new Random(seed);
        var serial = "AH" + Guid.NewGuid().ToString("N")[..10];
        var grain = fx.Cluster.Grains.GetGrain<IPumpIngestGrain>(serial);
        await grain.PairAsync("H1", "test");

        // 80 days of an hourly pump (doses every hour, a measured level every 6 h, a refill every 20 days) in
        // 12-hour batches; one batch in five is held back and delivered after the next one (a gap filled late).
        var batches = Generate(rng, days: 80);
        var maxBatch = batches.Max(b => b.Events.Count);
        for (var i = 0; i < batches.Count; i++)
        {
            if (i + 1 < batches.Count && rng.NextDouble() < 0.2)
            {
                await grain.IngestAsync(batches[i + 1]);
                await grain.IngestAsync(batches[i] with { ReceivedAt = batches[i + 1].ReceivedAt });
                i++;
                continue;
            }

            await grain.IngestAsync(batches[i]);
        }

        await using var ds = NpgsqlDataSource.Create(fx.Cluster.ConnectionString);
        var store = new NpgsqlEventStore(ds);
        var reader = new PumpAsOfReader(store);
        var ct = TestContext.Current.CancellationToken;
        var streamLength = (await PumpAsOfReader.Stream(store, serial, ct).ToListAsync(ct)).Count;

        // One history interval, the snapshot cadence (the kept one is taken at the first save past a multiple), the
        // held-back batch and the one before it (late events after the next kept snapshot), and the two identity events.
        var bound = HistoryClusterFixture.HistoryEvery + HistoryClusterFixture.SnapshotEvery + (3 * (maxBatch + 4)) + 2;
        Assert.True(streamLength > 10 * bound, $"the stream ({streamLength} events) must be long against the bound ({bound})");

        var fromSnapshot = 0;
        var times = Enumerable.Range(0, 30).Select(_ => T0.AddHours(rng.NextDouble() * 80 * 24)).Append(T0.AddDays(-1)).Append(T0.AddDays(90));
        foreach (var asOf in times)
        {
            var bounded = await reader.ReadWithCostAsync(serial, asOf, ct);
            var full = await PumpAsOf.FoldAsync(serial, asOf, PumpAsOfReader.Stream(store, serial, ct), ct);

            Assert.Equal(JsonSerializer.Serialize(full), JsonSerializer.Serialize(bounded.View));
            Assert.False(bounded.Replayed, $"as of {asOf:O}: a late event reached behind the snapshot's window");
            Assert.True(bounded.EventsRead <= bound, $"as of {asOf:O}: {bounded.EventsRead} events read after version {bounded.FromVersion} (bound {bound}, stream {streamLength})");
            fromSnapshot += bounded.FromVersion > 0 ? 1 : 0;
        }

        // Every time after the first kept snapshot starts from one (the first ~4 days have none yet).
        Assert.True(fromSnapshot >= 25, $"{fromSnapshot} of 32 as-of reads started from a kept snapshot");
    }

    private static List<IngestBatch> Generate(Random rng, int days)
    {
        var events = new List<DeviceEvent> { Continuous(1, T0, 0.5), Refill(2, T0, 18) };
        long seq = 2;
        var level = 18.0;
        for (var h = 1; h <= days * 24; h++)
        {
            var at = T0.AddHours(h);
            var dose = Math.Round(0.5 / 24 * (1 + ((rng.NextDouble() - 0.5) * 0.1)), 5);
            level -= dose;
            events.Add(Dose(++seq, at.AddHours(-1), at, dose));
            if (h % 6 == 0)
            {
                events.Add(Level(++seq, at, Math.Round(level + ((rng.NextDouble() - 0.5) * 0.2), 3)));
            }

            if (h % (20 * 24) == 0)
            {
                events.Add(Refill(++seq, at, 18, expected: Math.Round(level, 2), aspirated: Math.Round(level + ((rng.NextDouble() - 0.5) * 0.4), 2)));
                level = 18;
            }
        }

        return [.. events.GroupBy(e => (int)Math.Floor((e.At - T0).TotalHours / BatchHours)).OrderBy(g => g.Key).Select(g => new IngestBatch
        {
            HubId = "H1", ReceivedAt = T0.AddHours((g.Key + 1) * BatchHours).AddMinutes(5), Device = Device20, Events = [.. g],
        })];
    }
}
