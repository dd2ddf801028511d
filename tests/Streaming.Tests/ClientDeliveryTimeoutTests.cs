using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Orleans.Runtime.Providers;
using Orleans.Streams;
using Orleans.TestingHost;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Log;
using PumpFleet.TestSupport;

namespace PumpFleet.Streaming.Tests;

/// <summary>
/// A delivery to an Orleans client that is never answered (what a SIGKILL of the silo whose gateway carried it does:
/// the request or its answer is lost without an error) holds that consumer only for <c>Streaming:ClientDeliveryTimeout</c>,
/// then the agent retries it; before, it waited the silo's 30-s response timeout (the full fault form's 23–28 s). The
/// lost answer is stood in for by a consumer that does not return from its first delivery until the agent gave it up.
/// </summary>
public sealed class ClientDeliveryTimeoutTests(PostgresFixture pg)
{
    // Well inside the silo's 30-s response timeout, which is what the agent waited without the bound.
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task AClientThatDoesNotAnswerADelivery_IsGivenUpAfterTheBound_NotTheResponseTimeout_AndDeliveryGoesOn()
    {
        var ct = TestContext.Current.CancellationToken;
        var cs = await StreamCluster.CreateDatabaseAsync(pg, "cdt");
        await using var ds = NpgsqlDataSource.Create(cs);
        var store = new NpgsqlEventStore(ds);
        var logs = CapturingLoggerProvider.Diagnostic();
        await using var cluster = await StreamCluster.StartAsync(cs, silos: 1, logs: logs, options: o => o.ClientDeliveryTimeout = TimeSpan.FromSeconds(1));
        var silo = ((InProcessSiloHandle)cluster.Silos[0]).ServiceProvider;
        // Failed deliveries are retried on the provider's schedule (Orleans' default waits 1 s doubling to 30 s).
        Assert.IsType<LogDeliveryRetryBackoff>(silo.GetKeyedService<IMessageDeliveryBackoffProvider>(LogStreams.ProviderName));

        var s = StreamCluster.NewStreamId("CDT");
        var consumer = new StallingConsumer();
        var stream = cluster.Client.GetStreamProvider(LogStreams.ProviderName)
            .GetStream<CommittedEvent>(LogStreams.ForPartition(LogPartitioning.PartitionOf(s)));
        var handle = await stream.SubscribeAsync(consumer);
        try
        {
            await StreamCluster.AppendAsync(store, s, 0, 1);
            await Eventually.TrueAsync(() => Task.FromResult(consumer.Stalling), TimeSpan.FromSeconds(60), "the first delivery reached the client");
            var stalled = Stopwatch.StartNew();

            // The agent gives the unanswered call up (Orleans' own warning) after the bound (1 s here), not after the silo's
            // response timeout (30 s): without ClientDeliveryTimeout this wait fails.
            var partition = $"pumpfleet.log.partition/{LogPartitioning.PartitionOf(s)},";
            await Eventually.TrueAsync(() => Task.FromResult(logs.Messages.Any(m => m.Contains("Failed to deliver message to consumer", StringComparison.Ordinal) && m.Contains(partition, StringComparison.Ordinal))),
                Bound, "the agent to give the unanswered delivery up");
            Assert.True(stalled.Elapsed < Bound, $"given up after {stalled.Elapsed}");
            Assert.Contains(logs.Messages, m => m.Contains("not answered within 1000 ms", StringComparison.Ordinal));
            consumer.Release();

            // And retries it: the client, which had version 1 after all, answers the retry with its handshake token (Orleans
            // then moves that consumer's cursor past version 1), and what follows is delivered.
            await StreamCluster.AppendAsync(store, s, 1, 1);
            try
            {
                await Eventually.TrueAsync(() => Task.FromResult(consumer.Count(s, 1) >= 1 && consumer.Count(s, 2) >= 1), TimeSpan.FromSeconds(60),
                    "version 2 delivered after the abandoned delivery");
            }
            catch (TimeoutException e)
            {
                throw new TimeoutException($"{e.Message} ({consumer.Describe(s)}); log:\n{string.Join("\n", logs.Messages.Where(m => !m.Contains("Polly", StringComparison.Ordinal)).TakeLast(150))}", e);
            }
        }
        finally
        {
            consumer.Release();
            await handle.UnsubscribeAsync();
        }
    }

    /// <summary>Stalls its first delivery until released (an answer that never comes back); records every delivery.</summary>
    private sealed class StallingConsumer : IAsyncObserver<CommittedEvent>
    {
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly ConcurrentDictionary<(string, long), int> _counts = new();
        private int _calls;

        public bool Stalling => Volatile.Read(ref _calls) > 0;

        public void Release() => _release.TrySetResult();

        public int Count(string stream, long version) => _counts.GetValueOrDefault((stream, version));

        public string Describe(string stream) => string.Join(", ", _counts.Where(x => x.Key.Item1 == stream).OrderBy(x => x.Key.Item2).Select(x => $"v{x.Key.Item2}×{x.Value}"));

        public async Task OnNextAsync(CommittedEvent item, StreamSequenceToken? token = null)
        {
            _counts.AddOrUpdate((item.StreamId, item.Version), 1, (_, n) => n + 1);
            if (Interlocked.Increment(ref _calls) == 1)
            {
                await _release.Task;
            }
        }

        public Task OnCompletedAsync() => Task.CompletedTask;

        public Task OnErrorAsync(Exception ex) => Task.CompletedTask;
    }
}
