using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Orleans.Reminders;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;
using PumpFleet.Contracts.Json;
using PumpFleet.Domain.Detection;
using PumpFleet.EventStore;
using PumpFleet.Grains;
using PumpFleet.TestSupport;
using static PumpFleet.Detection.Tests.PumpScript;

namespace PumpFleet.Detection.Tests;

/// <summary>
/// The re-evaluation on time driven by the pump's own durable reminder, on a real in-process silo: nothing but the
/// reminder calls the grain after it is flagged silent. The fake clock drives both the grain's decisions and the
/// reminder subsystem (its keyed <see cref="TimeProvider"/>), so the reminder fires when the clock is advanced, and
/// the test polls the store for the outcome instead of sleeping.
/// </summary>
public sealed class SilentReminderTests(PostgresFixture pg) : IAsyncLifetime
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow.AddMinutes(1));
    private PumpCluster _cluster = null!;
    private IEventStore _store = null!;

    public async ValueTask InitializeAsync()
    {
        var cs = await pg.CreateDatabaseAsync("rem");
        _cluster = await PumpCluster.StartAsync(cs, configure: services =>
        {
            services.AddSingleton<TimeProvider>(_time);
            services.AddKeyedSingleton<TimeProvider>(ReminderTimeProviderNames.Reminders, _time);

            // The shortest period the options allow (1 min); on the fake clock it costs no real time.
            services.Configure<AnomalyDetectionOptions>(o => o.ReevaluateAfter = TimeSpan.FromMinutes(1));
        });
        _store = _cluster.SiloServices.GetRequiredService<IEventStore>();
    }

    public async ValueTask DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task SilentBaclofenPump_TheReminderRaisesDepletionRisk_AtLeast24hBeforeTheLedgerEmpties()
    {
        var serial = "RM-" + Guid.NewGuid().ToString("N")[..8];
        var grain = _cluster.Grains.GetGrain<IPumpIngestGrain>(serial);
        await grain.PairAsync("H-1", "test");
        var t = _time.GetUtcNow();

        // 12 mL of baclofen at 2 mL/day, low-reservoir level 2 mL: the ledger reaches it in 5 days and empties in 6,
        // beyond the 72 h horizon, so the batch itself opens nothing.
        await grain.IngestAsync(new IngestBatch
        {
            HubId = "H-1", ReceivedAt = t, Device = new DeviceInfo { Model = "SM2-20", Firmware = "4.2.1", Lot = "L1", ReservoirCapacityMl = 20 },
            Events = [Rx(t, 2, drug: "baclofen", lowAlarm: 2) with { Seq = 1 }, Refill(t, 0, 0, 12, drug: "baclofen") with { Seq = 2 }, Running(t) with { Seq = 3 }],
        });
        var view = await _cluster.Grains.GetGrain<IPumpQueryGrain>(serial).GetStateAsync();
        Assert.Empty(view.OpenAnomalies);
        var emptyAt = view.ForecastEmptyAt!.Value;

        // Silent for 25 h: the monitor flags it, which registers the reminder. Its own re-evaluation finds nothing
        // yet: run down for 25 h, the ledger is still 3.96 days from the threshold.
        _time.Advance(TimeSpan.FromHours(25));
        Assert.True(await _cluster.Grains.GetGrain<IPumpMonitorGrain>(serial).MarkSilentAsync(view.LastSeenAt!.Value, TimeSpan.FromHours(24)));
        Assert.DoesNotContain(await ReadAsync(serial), e => e is AnomalyDetected { Kind: AnomalyKinds.DepletionRisk });

        // From here only the reminder calls the grain. A day later, still no data: run down for 49 h, the ledger is
        // 2.96 days from the threshold, inside the 72 h horizon.
        _time.Advance(TimeSpan.FromHours(24));
        AnomalyDetected? risk = null;
        await Eventually.TrueAsync(async () =>
        {
            risk = (await ReadAsync(serial)).OfType<AnomalyDetected>().FirstOrDefault(a => a.Kind == AnomalyKinds.DepletionRisk);
            if (risk is null)
            {
                // The reminder service arms each reminder's wait on its own task, after the registration returned. On a
                // busy machine that can happen after the 24-h advance above, and the wait is then anchored to the
                // advanced clock: it would never fire without another advance (the one flaky CI run). One reminder
                // period per poll lets an armed wait fire; at most ~15 h more over the timeout, well inside the margins
                // asserted below (49 h without data, the ledger empty at 144 h).
                _time.Advance(TimeSpan.FromMinutes(1));
            }

            return risk is not null;
        }, TimeSpan.FromSeconds(90), "the reminder re-evaluates the silent pump and opens depletion-risk", TimeSpan.FromMilliseconds(100));

        Assert.Equal("critical", risk!.Severity);
        Assert.True(emptyAt - risk.At >= TimeSpan.FromHours(24), $"raised {emptyAt - risk.At} before the ledger empties");
        Assert.True(risk.Evidence["hoursWithoutData"] >= 49, $"hoursWithoutData {risk.Evidence["hoursWithoutData"]}");
        Assert.Equal(risk.At, risk.RaisedAt);   // a decision on time: no data, stamped with the clock
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
