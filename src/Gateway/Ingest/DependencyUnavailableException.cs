namespace PumpFleet.Gateway.Ingest;

/// <summary>
/// A dependency (Orleans, PostgreSQL, the broker) failed while a message was processed. The message must not be
/// acknowledged: the hub (embedded) or the broker (external) delivers it again.
/// </summary>
public sealed class DependencyUnavailableException : Exception
{
    /// <summary>Creates the exception for <paramref name="dependency"/>.</summary>
    public DependencyUnavailableException(string dependency, Exception inner)
        : base($"Dependency '{dependency}' is unavailable: {inner.Message}", inner) => Dependency = dependency;

    /// <summary>Required by CA1032.</summary>
    public DependencyUnavailableException() : base("A dependency is unavailable.") => Dependency = "unknown";

    /// <summary>Required by CA1032.</summary>
    public DependencyUnavailableException(string message) : base(message) => Dependency = "unknown";

    /// <summary>One of <see cref="Dependencies"/>.</summary>
    public string Dependency { get; }
}
