using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.Contracts.Json;
using PumpFleet.Contracts.Views;
using PumpFleet.Domain.Detection;
using PumpFleet.EventStore;
using PumpFleet.TestSupport;
using static PumpFleet.Detection.Tests.PumpScript;

namespace PumpFleet.Detection.Tests;

/// <summary>
/// The cohort flow correction inside a real PumpGrain (in-process silo, real PostgreSQL, fake clock): told a cohort's
/// factor, the pump stores <c>flow-correction.changed</c>, opens the <c>depletion-risk</c> the corrected forecast calls
/// for (labelled with the cohort, factor and source), keeps the correction across a reactivation, and told to drop it,
/// resolves the alert the uncorrected forecast no longer supports.
/// </summary>
public sealed class FlowCorrectionGrainTests(PostgresFixture pg) : IAsyncLifetime
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow.AddMinutes(1));
    private PumpCluster _cluster = null!;
    private IEventStore _store = null!;

    public async ValueTask InitializeAsync()
    {
        _cluster = await PumpCluster.StartAsync(await pg.CreateDatabaseAsync("flowcorr"), configure: s => s.AddSingleton<TimeProvider>(_time));
        _store = _cluster.SiloServices.GetRequiredService<IEventStore>();
    }

    public async ValueTask DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task Correction_OpensTheDepletionRiskTheCorrectedForecastCallsFor_AndDroppingItResolvesIt()
    {
        var id = Guid.NewGuid().ToString("N")[..8];
        var serial = "FC-" + id;
        var lot = "LF" + id;

        // 19 mL at 1 mL/day, low-reservoir level 2 mL, 11 days in: 8 mL left by the ledger, 6 days to the threshold.
        await IngestDaysAsync(serial, lot, days: 11);
        var before = await StateAsync(serial);
        Assert.DoesNotContain(before.OpenAnomalies, a => a.Kind == AnomalyKinds.DepletionRisk);
        Assert.Equal(RefillDueSources.Ledger, before.NextRefillDueSource);

        // Its lot over-infuses by 30 %: 11 × 0.3 = 3.3 mL more already gone (4.7 mL), falling at 1.3 mL/day: 49.8 h.
        var correction = new PumpFlowCorrection
        {
            AnomalyId = $"cohort-flow:lot:{lot}:1", Cohort = $"cohort-flow:lot:{lot}", Factor = 1.3, Since = _time.GetUtcNow(),
        };
        var monitor = _cluster.Grains.GetGrain<IPumpMonitorGrain>(serial);
        Assert.True(await monitor.SetFlowCorrectionAsync(correction));
        Assert.False(await monitor.SetFlowCorrectionAsync(correction));   // told again (the read model lags): nothing

        var view = await StateAsync(serial);
        var risk = Assert.Single(view.OpenAnomalies, a => a.Kind == AnomalyKinds.DepletionRisk);
        Assert.Equal("warning", risk.Severity);
        Assert.Equal(1, risk.Evidence["flowCorrected"]);
        Assert.Equal(1.3, risk.Evidence["cohortFlowFactor"]);
        Assert.Equal(49.8, risk.Evidence["hoursToThreshold"], 1);
        Assert.Equal(144, risk.Evidence["uncorrectedHoursToThreshold"], 1);
        Assert.Contains($"lot {lot}'s flow factor 1.300", risk.Summary, StringComparison.Ordinal);
        Assert.Contains(correction.AnomalyId, risk.Summary, StringComparison.Ordinal);

        // The stored due date is the corrected one, with its source; the programmed-rate date is kept beside it.
        Assert.Equal(RefillDueSources.CohortFlow, view.NextRefillDueSource);
        Assert.Equal(view.FlowCorrection!.NextRefillDueAt, view.NextRefillDueAt);
        Assert.Equal(view.LowReservoirAt, view.UncorrectedNextRefillDueAt);
        Assert.True(view.NextRefillDueAt < view.UncorrectedNextRefillDueAt);
        Assert.Equal($"lot {lot}", view.FlowCorrection.Cohort);
        Assert.Equal(correction.AnomalyId, view.FlowCorrection.AnomalyId);

        // Durable: a new activation folds it back from the store.
        await DeactivateAsync(serial);
        Assert.Equal(correction.AnomalyId, (await StateAsync(serial)).FlowCorrection?.AnomalyId);
        Assert.False(await monitor.SetFlowCorrectionAsync(correction));

        // The cohort's warning resolved: back to the programmed rate, 144 h > 1.5 × 72 h, so the alert resolves.
        Assert.True(await monitor.SetFlowCorrectionAsync(null));
        var after = await StateAsync(serial);
        Assert.DoesNotContain(after.OpenAnomalies, a => a.Kind == AnomalyKinds.DepletionRisk);
        Assert.Null(after.FlowCorrection);
        Assert.Equal(RefillDueSources.Ledger, after.NextRefillDueSource);
        Assert.Equal(before.NextRefillDueAt, after.NextRefillDueAt);

        var events = await ReadAsync(serial);
        Assert.Equal(2, events.OfType<FlowCorrectionChanged>().Count());
        var resolved = Assert.Single(events.OfType<AnomalyResolved>());
        Assert.Equal(risk.Id, resolved.AnomalyId);
        Assert.True(resolved.Automatic);
    }

    [Fact]
    public async Task UnderInfusingCohort_IsShown_ButNeverPutsTheAlertOrTheDueDateOff()
    {
        var id = Guid.NewGuid().ToString("N")[..8];
        var serial = "FU-" + id;
        var lot = "LU" + id;

        // 14 days in: 5 mL left, 72 h to the threshold at the programmed rate: the alert is open.
        await IngestDaysAsync(serial, lot, days: 14);
        var open = Assert.Single((await StateAsync(serial)).OpenAnomalies, a => a.Kind == AnomalyKinds.DepletionRisk);

        var monitor = _cluster.Grains.GetGrain<IPumpMonitorGrain>(serial);
        Assert.True(await monitor.SetFlowCorrectionAsync(new PumpFlowCorrection
        {
            AnomalyId = $"cohort-flow:lot:{lot}:1", Cohort = $"cohort-flow:lot:{lot}", Factor = 0.7, Since = _time.GetUtcNow(),
        }));

        var view = await StateAsync(serial);
        Assert.Equal(open.Id, Assert.Single(view.OpenAnomalies, a => a.Kind == AnomalyKinds.DepletionRisk).Id);
        Assert.Equal(RefillDueSources.Ledger, view.NextRefillDueSource);
        Assert.Equal(view.UncorrectedNextRefillDueAt, view.NextRefillDueAt);
        Assert.True(view.FlowCorrection!.NextRefillDueAt > view.NextRefillDueAt, "the later corrected date is shown, not used");
    }

    [Fact]
    public async Task BadCorrections_AreRefused_AndAnUnknownPumpGetsNoStream()
    {
        var monitor = _cluster.Grains.GetGrain<IPumpMonitorGrain>("FX-" + Guid.NewGuid().ToString("N")[..8]);
        var good = new PumpFlowCorrection { AnomalyId = "cohort-flow:lot:L1:1", Cohort = "cohort-flow:lot:L1", Factor = 1.2, Since = _time.GetUtcNow() };
        await Assert.ThrowsAsync<ArgumentException>(() => monitor.SetFlowCorrectionAsync(good with { Factor = double.NaN }));
        await Assert.ThrowsAsync<ArgumentException>(() => monitor.SetFlowCorrectionAsync(good with { Factor = 9 }));
        await Assert.ThrowsAsync<ArgumentException>(() => monitor.SetFlowCorrectionAsync(good with { Cohort = "cohort:SM2-20:4.2.1:L1" }));
        await Assert.ThrowsAsync<ArgumentException>(() =>
            _cluster.Grains.GetGrain<IPumpMonitorGrain>("cohort-flow:lot:L1").SetFlowCorrectionAsync(good));

        // A serial never heard from: nothing appended (a fleet job must not create pump streams).
        Assert.False(await monitor.SetFlowCorrectionAsync(good));
        Assert.Equal(0, (await StateAsync(monitor.GetPrimaryKeyString())).Version);
    }

    private async Task IngestDaysAsync(string serial, string lot, int days)
    {
        var grain = _cluster.Grains.GetGrain<IPumpIngestGrain>(serial);
        var feed = await HubFeed.PairAsync(grain, _time, lot);
        Task<IngestResult> Send(params DeviceEvent[] events) => feed.SendAsync(events);

        await Send(new TherapyPhaseChanged { Seq = 0, At = T0, Phase = "implanted" }, Rx(T0, 1.0, lowAlarm: 2), Refill(T0, 0, 0, 19), Running(T0));
        for (var d = 1; d <= days; d++)
        {
            _time.Advance(TimeSpan.FromMinutes(1));
            await Send(Dose(T0.AddDays(d - 1), T0.AddDays(d), 1.0));
        }
    }

    // Deactivation is awaited through the management extension, so the next call re-reads the stream.
    private ValueTask DeactivateAsync(string serial) =>
        _cluster.Grains.GetGrain<IPumpQueryGrain>(serial).Cast<Orleans.Core.Internal.IGrainManagementExtension>().DeactivateOnIdle();

    private Task<PumpView> StateAsync(string serial) => _cluster.Grains.GetGrain<IPumpQueryGrain>(serial).GetStateAsync();

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
