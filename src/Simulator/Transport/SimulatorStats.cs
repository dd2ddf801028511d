namespace PumpFleet.Simulator.Transport;

/// <summary>Counters of a run, safe to read while it runs.</summary>
public sealed class SimulatorStats
{
    private long _eventsPublished;
    private long _batchesPublished;
    private long _eventsResent;
    private long _acks;
    private long _rejects;
    private long _reconnects;
    private long _publishFailures;

    /// <summary>Events published (first sends and resends).</summary>
    public long EventsPublished => Interlocked.Read(ref _eventsPublished);

    /// <summary>Batches published.</summary>
    public long BatchesPublished => Interlocked.Read(ref _batchesPublished);

    /// <summary>Events published again because an earlier attempt may not have reached the platform (after a reconnect).</summary>
    public long EventsResent => Interlocked.Read(ref _eventsResent);

    /// <summary>Acks received.</summary>
    public long AcksReceived => Interlocked.Read(ref _acks);

    /// <summary>Rejects received.</summary>
    public long RejectsReceived => Interlocked.Read(ref _rejects);

    /// <summary>Successful reconnects after a lost connection.</summary>
    public long Reconnects => Interlocked.Read(ref _reconnects);

    /// <summary>Publishes that failed (the events stay queued).</summary>
    public long PublishFailures => Interlocked.Read(ref _publishFailures);

    internal void OnPublished(int events, int resent)
    {
        Interlocked.Add(ref _eventsPublished, events);
        Interlocked.Add(ref _eventsResent, resent);
        Interlocked.Increment(ref _batchesPublished);
    }

    internal void OnAck() => Interlocked.Increment(ref _acks);

    internal void OnReject() => Interlocked.Increment(ref _rejects);

    internal void OnReconnect() => Interlocked.Increment(ref _reconnects);

    internal void OnPublishFailed() => Interlocked.Increment(ref _publishFailures);
}
