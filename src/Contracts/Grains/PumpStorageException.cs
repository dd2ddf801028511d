namespace PumpFleet.Contracts.Grains;

/// <summary>
/// A pump grain could not read or write its events (the event store is unavailable). Thrown instead of the
/// driver's own exception, which has no Orleans codec and would reach callers as a CodecNotFoundException.
/// The call had no effect that was acknowledged: the caller must not acknowledge and may retry.
/// </summary>
[GenerateSerializer, Alias("pumpfleet.PumpStorageException.v1")]
public sealed class PumpStorageException : Exception
{
    /// <summary>Creates the exception.</summary>
    public PumpStorageException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public PumpStorageException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public PumpStorageException(string message, Exception innerException) : base(message, innerException)
    {
    }
}
