using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PumpFleet.EventStore.Retention;
using PumpFleet.TestSupport;

namespace PumpFleet.EventStore.Tests;

/// <summary>The silo's partition and retention job as the silo registers it: partitions made ahead, each logged; bad options refused at start.</summary>
public sealed class RetentionJobTests(PostgresFixture pg) : EventStoreTestBase(pg)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private IHost Build(Dictionary<string, string?> settings, CapturingLoggerProvider? logs = null)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(settings);
        if (logs is not null)
        {
            builder.Logging.AddProvider(logs);
        }

        builder.Services.AddPumpFleetEventStore(ConnectionString);
        builder.Services.AddPumpFleetEventRetention();
        return builder.Build();
    }

    [Fact]
    public async Task TheJob_CreatesPartitionsAhead_AndLogsEach()
    {
        var logs = new CapturingLoggerProvider();
        using var host = Build(new() { ["EventStore:Retention:PartitionsAhead"] = "5" }, logs);
        await host.StartAsync(Ct);
        var now = DateTimeOffset.UtcNow;
        var end = new DateTimeOffset(now.Year, now.Month, 1, 0, 0, 0, TimeSpan.Zero).AddMonths(6);
        await Eventually.TrueAsync(() => Task.FromResult(logs.Messages.Any(m => m.StartsWith("Event table partitions: ", StringComparison.Ordinal))),
            TimeSpan.FromSeconds(30), "the job's first run reported");
        await host.StopAsync(Ct);
        Assert.Equal(end, (await new EventPartitions(DataSource).ListAsync(Ct))[^1].To);
        var last = $"pf_events_{end.AddMonths(-1):yyyy_MM}";
        Assert.Contains(logs.Messages, m => m.StartsWith($"Event table partition {last} created ahead of time", StringComparison.Ordinal));
        Assert.Contains(logs.Messages, m => m.StartsWith("Event table partitions: ", StringComparison.Ordinal) && m.Contains($"until {end:yyyy-MM-dd}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ArchivingWithoutADirectory_IsRefusedAtStart()
    {
        using var host = Build(new() { ["EventStore:Retention:ArchiveAfterMonths"] = "12" });
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(Ct));
        Assert.Contains("ArchiveDirectory", e.Message, StringComparison.Ordinal);
    }
}
