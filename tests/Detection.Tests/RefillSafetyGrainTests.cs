using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Orleans.TestingHost;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.Contracts.Json;
using PumpFleet.Domain.Detection;
using PumpFleet.EventStore;
using PumpFleet.Grains;
using PumpFleet.TestSupport;
using static PumpFleet.Detection.Tests.PumpScript;

namespace PumpFleet.Detection.Tests;

/// <summary>Refill safety inside a real PumpGrain, on an in-process silo with a real PostgreSQL event store.</summary>
public sealed class RefillSafetyGrainTests(PostgresFixture pg) : IAsyncLifetime
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow.AddMinutes(1));
    private PumpCluster _cluster = null!;
    private IEventStore _store = null!;

    public async ValueTask InitializeAsync()
    {
        _cluster = await PumpCluster.StartAsync(await pg.CreateDatabaseAsync("rsafe"), configure: s => s.AddSingleton<TimeProvider>(_time));
        _store = _cluster.SiloServices.GetRequiredService<IEventStore>();
    }

    public async ValueTask DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task WrongConcentrationRefill_IsStoredAsOneCriticalMismatch_SurvivesReactivation_AndReprogrammingResolvesIt()
    {
        var serial = "RS-" + Guid.NewGuid().ToString("N")[..8];
        var grain = _cluster.Grains.GetGrain<IPumpIngestGrain>(serial);
        var feed = await HubFeed.PairAsync(grain, _time);
        Task<IngestResult> Send(params DeviceEvent[] events) => feed.SendAsync(events);
        RefillPerformed Fill(DateTimeOffset at, double mcgPerMl) => Refill(at, 4, 4, 16) with
        {
            Drug = "Lioresal", Concentration = new Concentration { Value = mcgPerMl, Unit = "mcg/mL" },
        };
        PrescriptionSet Baclofen(DateTimeOffset at, double mgPerMl, double rate) => Rx(at, rate, "baclofen") with
        {
            Concentration = new Concentration { Value = mgPerMl, Unit = "mg/mL" },
        };

        await Send(Baclofen(T0, 0.5, 0.8), Fill(T0, 500), Running(T0));
        Assert.DoesNotContain((await ReadAsync(serial)).OfType<AnomalyDetected>(), a => a.Kind == AnomalyKinds.RefillMismatch);

        // 2000 mcg/mL filled where 0.5 mg/mL is prescribed: four times the dose, 1600 mcg/day, above baclofen's 1000.
        await Send(Fill(T0.AddDays(30), 2000));
        var opened = (await ReadAsync(serial)).OfType<AnomalyDetected>().ToList();
        var mismatch = Assert.Single(opened, a => a.Kind == AnomalyKinds.RefillMismatch);
        Assert.Equal("critical", mismatch.Severity);
        Assert.Equal(500, mismatch.Evidence["prescribedConcentrationMcgPerMl"]);
        Assert.Equal(2000, mismatch.Evidence["refilledConcentrationMcgPerMl"]);
        var limit = Assert.Single(opened, a => a.Kind == AnomalyKinds.DoseAboveLimit);
        Assert.Equal(1600, limit.Evidence["dailyDoseMcg"], 6);
        var view = await _cluster.Grains.GetGrain<IPumpQueryGrain>(serial).GetStateAsync();
        Assert.Equal("critical", view.Status);

        // Snapshot + tail after reactivation: the next batch adds no duplicate.
        await DeactivateAsync(serial);
        await Send(Dose(T0.AddDays(30), T0.AddDays(30).AddHours(1), 0.03));
        Assert.Single((await ReadAsync(serial)).OfType<AnomalyDetected>(), a => a.Kind == AnomalyKinds.RefillMismatch);

        // The clinician reprograms for what is in the reservoir, at a rate within the limit: both resolve.
        await Send(Baclofen(T0.AddDays(30).AddHours(2), 2, 0.2));
        var resolved = (await ReadAsync(serial)).OfType<AnomalyResolved>().Select(r => r.AnomalyId).ToHashSet();
        Assert.Contains(mismatch.AnomalyId, resolved);
        Assert.Contains(limit.AnomalyId, resolved);
    }

    private async Task DeactivateAsync(string serial)
    {
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
