using System.Collections.Concurrent;
using Orleans.Streams;
using Orleans.Streams.Core;

namespace PumpFleet.Streaming.Tests;

/// <summary>What the test consumers received, by event-store stream id (unique per test, so parallel clusters in this process never mix).</summary>
public static class Recorder
{
    /// <summary>Deliveries on each pump's own stream, in arrival order.</summary>
    public static readonly ConcurrentDictionary<string, ConcurrentQueue<(long Version, LogSequenceToken Token)>> ByStream = new();

    /// <summary>Deliveries on the partition streams, in arrival order per partition.</summary>
    public static readonly ConcurrentDictionary<string, ConcurrentQueue<(string StreamId, long Version)>> ByPartition = new();

    internal static void OnStream(CommittedEvent e, StreamSequenceToken? token) =>
        ByStream.GetOrAdd(e.StreamId, _ => new()).Enqueue((e.Version, (LogSequenceToken)token!));

    internal static void OnPartition(string partition, CommittedEvent e) =>
        ByPartition.GetOrAdd(partition, _ => new()).Enqueue((e.StreamId, e.Version));

    /// <summary>Versions delivered on a stream so far, in arrival order.</summary>
    public static long[] Versions(string streamId) => ByStream.TryGetValue(streamId, out var q) ? q.Select(x => x.Version).ToArray() : [];

    /// <summary>Distinct versions delivered (an at-least-once consumer's view after dedupe by version).</summary>
    public static long[] DistinctVersions(string streamId) => Versions(streamId).Distinct().Order().ToArray();
}

/// <summary>A grain interface for the recorders (implicit subscriptions activate them; nothing calls it).</summary>
[Alias("pumpfleet.tests.recorder")]
public interface IRecorderGrain : IGrainWithStringKey
{
    /// <summary>Does nothing.</summary>
    [Alias("ping")]
    Task PingAsync();
}

/// <summary>Implicitly subscribed to every pump stream of the log provider; records what it receives.</summary>
[ImplicitStreamSubscription(LogStreams.Namespace)]
public sealed class StreamRecorderGrain : Grain, IRecorderGrain, IStreamSubscriptionObserver, IAsyncObserver<CommittedEvent>
{
    /// <inheritdoc />
    public Task PingAsync() => Task.CompletedTask;

    /// <inheritdoc />
    public async Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory) =>
        await handleFactory.Create<CommittedEvent>().ResumeAsync(this);

    /// <inheritdoc />
    public Task OnNextAsync(CommittedEvent item, StreamSequenceToken? token = null)
    {
        Recorder.OnStream(item, token);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task OnCompletedAsync() => Task.CompletedTask;

    /// <inheritdoc />
    public Task OnErrorAsync(Exception ex) => Task.CompletedTask;
}

/// <summary>Implicitly subscribed to every partition stream; records the order within each partition.</summary>
[ImplicitStreamSubscription(LogStreams.PartitionNamespace)]
public sealed class PartitionRecorderGrain : Grain, IRecorderGrain, IStreamSubscriptionObserver, IAsyncObserver<CommittedEvent>
{
    /// <inheritdoc />
    public Task PingAsync() => Task.CompletedTask;

    /// <inheritdoc />
    public async Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory) =>
        await handleFactory.Create<CommittedEvent>().ResumeAsync(this);

    /// <inheritdoc />
    public Task OnNextAsync(CommittedEvent item, StreamSequenceToken? token = null)
    {
        Recorder.OnPartition(this.GetPrimaryKeyString(), item);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task OnCompletedAsync() => Task.CompletedTask;

    /// <inheritdoc />
    public Task OnErrorAsync(Exception ex) => Task.CompletedTask;
}
