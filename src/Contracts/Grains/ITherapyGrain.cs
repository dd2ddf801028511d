using PumpFleet.Contracts.Views;

namespace PumpFleet.Contracts.Grains;

/// <summary>
/// The one writer of a therapy's stream (<c>therapy:{id}</c>): decides each clinician command with the pure rules of
/// <c>Domain/Therapies</c> and appends what they allow. Key: the therapy's pseudonymous id.
/// </summary>
[Alias("pumpfleet.ITherapyGrain")]
public interface ITherapyGrain : IGrainWithStringKey
{
    /// <summary>The folded therapy (<see cref="TherapyView.Version"/> 0 when it does not exist).</summary>
    [Alias("Get")]
    Task<TherapyView> GetAsync();

    /// <summary>Decides <paramref name="command"/> and appends its events; a refused command appends nothing and says why.</summary>
    [Alias("Execute")]
    Task<TherapyCommandResult> ExecuteAsync(TherapyCommand command);
}

/// <summary>
/// A clinician's command on a therapy. <see cref="Action"/> is one of <c>open</c>, <c>trial</c>, <c>response</c>,
/// <c>decision</c>, <c>implant</c>, <c>replace</c>, <c>explant</c>; the other fields are that action's arguments.
/// </summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.TherapyCommand.v1")]
public sealed record TherapyCommand
{
    [Id(0)] public required string Action { get; init; }
    /// <summary>The signed-in user.</summary>
    [Id(1)] public required string By { get; init; }
    /// <summary>Clinical time of the act (null: now).</summary>
    [Id(2)] public DateTimeOffset? At { get; init; }
    [Id(3)] public string? Note { get; init; }
    [Id(4)] public string? Indication { get; init; }
    [Id(5)] public string? TrialKind { get; init; }
    [Id(6)] public string? Drug { get; init; }
    [Id(7)] public int? Doses { get; init; }
    [Id(8)] public string? ExternalPump { get; init; }
    [Id(9)] public DateTimeOffset? EndedAt { get; init; }
    [Id(10)] public int? PainBefore { get; init; }
    [Id(11)] public int? PainAfter { get; init; }
    [Id(12)] public bool? Proceed { get; init; }
    /// <summary>The pump implanted (<c>implant</c>) or the new pump (<c>replace</c>).</summary>
    [Id(13)] public string? Serial { get; init; }
    [Id(14)] public string? Reason { get; init; }
}

/// <summary>The outcome of a therapy command.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.TherapyCommandResult.v1")]
public sealed record TherapyCommandResult
{
    /// <summary>Null when accepted; otherwise <c>invalid</c> (a bad argument: 400), <c>not-found</c> (404) or <c>conflict</c> (the therapy's state does not allow it: 409).</summary>
    [Id(0)] public string? Error { get; init; }
    /// <summary>Why it was refused, naming the field when one is wrong.</summary>
    [Id(1)] public string? Reason { get; init; }
    /// <summary>The field at fault, for <c>invalid</c>.</summary>
    [Id(2)] public string? Field { get; init; }
    /// <summary>The therapy after the command.</summary>
    [Id(3)] public required TherapyView Therapy { get; init; }
}
