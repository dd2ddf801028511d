using Microsoft.Extensions.Options;

namespace PumpFleet.EventStore;

/// <summary>How the platform's pooled connections are handed on (section <c>EventStore</c>; <see cref="EventStoreDataSource.Build"/>).</summary>
public sealed class PooledConnectionOptions
{
    /// <summary>Configuration section.</summary>
    public const string SectionName = "EventStore";

    /// <summary>
    /// Let Npgsql reset a returned connection's session before its next borrower (<c>RESET ALL</c>, <c>UNLISTEN *</c>,
    /// <c>pg_advisory_unlock_all()</c>, … sent with the next command: one more PostgreSQL transaction per borrow).
    /// Default: false — the platform keeps no session state on pooled connections (its LISTEN connections are
    /// unpooled, its locks transaction-scoped), and without the reset PostgreSQL ran half the transactions per message
    /// at 5,000 events/s (docs/benchmarks.md "The connection reset off"). True brings the reset back (to compare, or
    /// for code of one's own that leaves session state behind). A connection string that sets <c>No Reset On Close</c>
    /// itself wins over the default; setting this true while the connection string says <c>No Reset On Close=true</c>
    /// is refused at start.
    /// </summary>
    public bool ResetPooledConnections { get; set; }

    /// <summary>
    /// The connection string the data source is built from, given by <c>AddPumpFleetEventStore</c> (not read from
    /// this section) so that the validator can refuse a contradiction between the two.
    /// </summary>
    public string? ConnectionString { get; internal set; }
}

/// <summary>Checks <see cref="PooledConnectionOptions"/> at start-up (registered with <c>ValidateOnStart</c>).</summary>
public sealed class PooledConnectionOptionsValidator : IValidateOptions<PooledConnectionOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, PooledConnectionOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        // Two explicit settings that disagree: obeying either one silently would hide the other's intent.
        return o.ResetPooledConnections && !string.IsNullOrWhiteSpace(o.ConnectionString)
            && EventStoreDataSource.SetsNoResetOnClose(o.ConnectionString)
            && new Npgsql.NpgsqlConnectionStringBuilder(o.ConnectionString).NoResetOnClose
            ? ValidateOptionsResult.Fail(
                $"{PooledConnectionOptions.SectionName}:ResetPooledConnections is true but the connection string sets No Reset On Close=true: remove one of the two.")
            : ValidateOptionsResult.Success;
    }
}
