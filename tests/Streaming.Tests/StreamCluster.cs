using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.TestingHost;
using PumpFleet.Clustering;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Log;
using PumpFleet.ReadModels;
using PumpFleet.TestSupport;

namespace PumpFleet.Streaming.Tests;

/// <summary>An in-process cluster with the log stream provider on a real database, and helpers to append.</summary>
public static class StreamCluster
{
    /// <summary>
    /// A fresh database with the event store's, the read models' and the cluster's schema: the read models' cohort tally
    /// grains are implicit subscribers of the partition streams in every cluster of these tests and keep their counts
    /// there; the cluster's migration 033 holds the persistent pub-sub state.
    /// </summary>
    public static Task<string> CreateDatabaseAsync(PostgresFixture pg, string prefix) =>
        pg.CreateDatabaseAsync(prefix, typeof(CohortTallyGrain).Assembly, typeof(PubSubStoreHostingExtensions).Assembly);

    /// <summary>
    /// Starts <paramref name="silos"/> silos with the provider (fast poll and checkpoint settings for tests), through
    /// TestSupport's cluster; with <paramref name="persistentPubSub"/> the pub-sub state is kept in PostgreSQL as in the
    /// silo host, otherwise in memory. <paramref name="logs"/>, when given, receives every silo's log lines;
    /// <paramref name="options"/> changes the provider's options after the tests' own.
    /// </summary>
    public static async Task<InProcessTestCluster> StartAsync(
        string connectionString, int silos, bool persistentPubSub = false, ILoggerProvider? logs = null, Action<LogStreamOptions>? options = null)
    {
        var configuration = new ConfigurationBuilder().Build();
        var cluster = await PumpCluster.StartAsync(connectionString, silos,
            configure: services =>
            {
                services.Configure<LogStreamOptions>(o =>
                {
                    o.PollInterval = TimeSpan.FromMilliseconds(500);
                    o.CheckpointInterval = TimeSpan.FromMilliseconds(200);
                    // The recorder of these tests subscribes to single pumps' streams too.
                    o.PumpStreams = true;
                    options?.Invoke(o);
                });
                services.AddPumpFleetReadModels();
                if (logs is not null)
                {
                    services.AddLogging(b => b.AddProvider(logs));
                }
            },
            configureSilo: silo =>
            {
                if (persistentPubSub)
                {
                    silo.AddPumpFleetPubSubStore(connectionString);
                }

                silo.AddPumpFleetLogStreams(configuration);
            },
            configureClient: client => client.AddPumpFleetLogStreams());
        return cluster.Cluster;
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
