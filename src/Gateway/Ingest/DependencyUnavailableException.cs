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

/// <summary>
/// Processing failed with an exception that is neither a known input error nor a known dependency failure, fewer
/// than <c>PoisonThreshold</c> times in a row: the message is not acknowledged and is retried (embedded: the hub
/// is disconnected and resends; external: retried in place). At the threshold it is quarantined as poison instead.
/// </summary>
public sealed class UnexpectedFailureException : Exception
{
    /// <summary>Creates the exception for the <paramref name="attempt"/>-th failure in a row.</summary>
    public UnexpectedFailureException(int attempt, Exception inner)
        : base($"Unexpected failure {attempt} in a row ({inner.GetType().Name}: {inner.Message})", inner) => Attempt = attempt;

    /// <summary>Required by CA1032.</summary>
    public UnexpectedFailureException() : base("Unexpected failure.")
    {
    }

    /// <summary>Required by CA1032.</summary>
    public UnexpectedFailureException(string message) : base(message)
    {
    }

    /// <summary>Required by CA1032.</summary>
    public UnexpectedFailureException(string message, Exception inner) : base(message, inner)
    {
    }

    /// <summary>How many times in a row this topic failed this way.</summary>
    public int Attempt { get; }
}
