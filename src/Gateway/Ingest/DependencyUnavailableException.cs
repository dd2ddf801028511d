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

/// <summary>
/// The message cannot be decided yet (External mode: a batch overtook the pump's first batch on another gateway
/// instance). It is left unacknowledged and retried, like a dependency failure, until <c>ReorderWindow</c> passes.
/// </summary>
public sealed class RetryLaterException : Exception
{
    /// <summary>Creates the exception.</summary>
    public RetryLaterException(string message) : base(message)
    {
    }

    /// <summary>Required by CA1032.</summary>
    public RetryLaterException() : base("Retry later.")
    {
    }

    /// <summary>Required by CA1032.</summary>
    public RetryLaterException(string message, Exception inner) : base(message, inner)
    {
    }
}
