namespace PumpFleet.Contracts.Grains;

/// <summary>
/// The claim on one pump serial by the therapy it is implanted in (stream <c>implant-claim:{serial}</c>). Key: the
/// serial. A pump is implanted in one patient's therapy, ever: the first therapy to claim it holds it.
/// </summary>
[Alias("pumpfleet.IImplantClaimGrain")]
public interface IImplantClaimGrain : IGrainWithStringKey
{
    /// <summary>
    /// Claims the serial for <paramref name="therapyId"/>: null when it now holds the serial (newly, or already), else
    /// the id of the therapy that holds it. The claim is stored before this returns.
    /// </summary>
    [Alias("Claim")]
    Task<string?> ClaimAsync(string therapyId, string by, DateTimeOffset at);

    /// <summary>The therapy holding the serial, or null.</summary>
    [Alias("Holder")]
    Task<string?> HolderAsync();
}
