using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Log;

namespace PumpFleet.Streaming.Tests;

/// <summary>An in-process cluster with the log stream provider on a real database, and helpers to append.</summary>
public static class StreamCluster
{
    /// <summary>Starts <paramref name="silos"/> silos with the provider (fast agent and poll settings for tests).</summary>
    public static async Task<InProcessTestCluster> StartAsync(string connectionString, int silos)
    {
        var builder = new InProcessTestClusterBuilder((short)silos);
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Streaming:SiloMaturityPeriod"] = "00:00:01" }).Build();
        builder.ConfigureSilo((_, silo) =>
        {
            silo.Services.AddPumpFleetEventStore(connectionString);
            silo.Services.Configure<LogStreamOptions>(o =>
            {
                o.PollInterval = TimeSpan.FromMilliseconds(500);
                o.CheckpointInterval = TimeSpan.FromMilliseconds(200);
            });
            silo.AddPumpFleetLogStreams(configuration);
        });
        builder.ConfigureClient(client => client.AddPumpFleetLogStreams());
        var cluster = builder.Build();
        await cluster.DeployAsync(TestContext.Current.CancellationToken);
        return cluster;
    }

    /// <summary>A unique stream id (a serial-like name) per test.</summary>
    public static string NewStreamId(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..Math.Min(prefix.Length + 13, 40)].ToUpperInvariant();

    /// <summary>A unique stream id whose log partition is <paramref name="partition"/>.</summary>
    public static string NewStreamIdIn(string prefix, int partition)
    {
        while (true)
        {
            var id = NewStreamId(prefix);
            if (LogPartitioning.PartitionOf(id) == partition)
            {
                return id;
            }
        }
    }

    /// <summary>Appends <paramref name="count"/> platform-style events to a stream at versions after <paramref name="expectedVersion"/>.</summary>
    public static Task<AppendResult> AppendAsync(IEventWriter store, string streamId, long expectedVersion, int count) =>
        store.AppendAsync(streamId, expectedVersion,
            Enumerable.Range(1, count).Select(i => new EventToAppend(
                Guid.NewGuid(), "test.event", $$"""{"n":{{expectedVersion + i}}}""", null, null, DateTimeOffset.UtcNow)).ToList(),
            TestContext.Current.CancellationToken);
}
