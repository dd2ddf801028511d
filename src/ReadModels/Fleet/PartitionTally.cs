namespace PumpFleet.ReadModels;

/// <summary>
/// The in-memory state a <see cref="PartitionTallyGrain{TTally, TMember}"/> keeps for one log partition: a member per
/// pump, applied from the partition's events in version order and deduped by version. Pure: no I/O, one grain owns it.
/// </summary>
/// <typeparam name="TMember">What is saved per pump.</typeparam>
public interface IPartitionTally<TMember>
{
    /// <summary>Pumps known.</summary>
    int Pumps { get; }

    /// <summary>The highest version applied for <paramref name="serial"/> (0: none).</summary>
    long VersionOf(string serial);

    /// <summary>Loads a pump's saved state (at start, before any event).</summary>
    void Load(TMember member);

    /// <summary>Applies one committed event; <see cref="TallyOutcome.Gap"/> asks the caller for the missing versions first.</summary>
    TallyOutcome Apply(string streamId, long version, string type, string data, DateTimeOffset? deviceTime, bool clockSuspect);

    /// <summary>The pumps changed since the last call (to save), and forgets them.</summary>
    IReadOnlyList<TMember> TakeChanged();

    /// <summary>Marks pumps as changed again (their save failed).</summary>
    void MarkChanged(IEnumerable<TMember> members);
}

/// <summary>Where a partition tally's members are saved (one table per tally, keyed by partition and pump).</summary>
/// <typeparam name="TMember">What is saved per pump.</typeparam>
public interface IPartitionTallyStore<TMember>
{
    /// <summary>Every saved member of <paramref name="partition"/>.</summary>
    Task<IReadOnlyList<TMember>> LoadAsync(int partition, CancellationToken ct = default);

    /// <summary>Saves (upserts) <paramref name="members"/> of <paramref name="partition"/>.</summary>
    Task SaveAsync(int partition, IReadOnlyList<TMember> members, CancellationToken ct = default);
}
