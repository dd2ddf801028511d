using System.Data.Common;
using Npgsql;

namespace PumpFleet.EventStore;

/// <summary>
/// The platform's Npgsql data source: the connection string as given, plus the defaults the store's hot statements
/// need unless the connection string sets them itself (docs/operations.md "Connection string").
/// </summary>
public static class EventStoreDataSource
{
    /// <summary>
    /// <c>Max Auto Prepare</c> when the connection string does not set it: how many distinct statements each pooled
    /// connection keeps prepared (LRU). The readers' and the append's statements run thousands of times a second with
    /// the same text; unprepared, every call is parsed and planned again (over a partitioned <c>pf_events</c> planning
    /// a reader's page took 0.56 ms against 0.07 ms with one table). PostgreSQL may still re-plan a prepared statement
    /// when it prefers custom plans, so what this buys is measured, not assumed (docs/benchmarks.md "Prepared readers").
    /// 64 covers the event store's, the projections' and the read models' statements with room to spare; each costs
    /// the server one cached statement per connection.
    /// </summary>
    public const int DefaultMaxAutoPrepare = 64;

    /// <summary>The session time zone of every connection (see <see cref="Build"/>).</summary>
    public const string SessionTimeZone = "UTC";

    /// <summary>
    /// Builds the pooled data source for <paramref name="connectionString"/> with the defaults above. Unless
    /// <paramref name="resetPooledConnections"/> is true or the connection string sets <c>No Reset On Close</c> itself,
    /// a connection goes back to the pool <b>without</b> Npgsql's session reset (<c>No Reset On Close=true</c>): with
    /// prepared statements the reset cannot be <c>DISCARD ALL</c> but a batch of seven statements (session
    /// authorization, <c>RESET ALL</c>, <c>CLOSE ALL</c>, <c>UNLISTEN *</c>, <c>pg_advisory_unlock_all()</c>, …) in front of
    /// the next borrower's first command, one PostgreSQL transaction each time: at 5,000 events/s in batches of 10 it
    /// was half the platform's transactions (docs/benchmarks.md, "The connection reset off"). Nothing of the
    /// platform leaves session state on a pooled connection for it to clean: what needs a session of its own (LISTEN)
    /// opens it from <see cref="UnpooledConnections"/>, locks are transaction-scoped, temporary tables are
    /// <c>ON COMMIT DROP</c> (tests/Architecture.Tests SessionStateTests keeps it so). An open transaction is still
    /// rolled back when a connection is returned, reset or not.
    /// </summary>
    public static NpgsqlDataSource Build(string connectionString, bool resetPooledConnections = false)
    {
        var builder = NewBuilder(connectionString);
        if (!Sets(connectionString, "maxautoprepare"))
        {
            builder.ConnectionStringBuilder.MaxAutoPrepare = DefaultMaxAutoPrepare;
        }

        if (!resetPooledConnections && !Sets(connectionString, "noresetonclose"))
        {
            builder.ConnectionStringBuilder.NoResetOnClose = true;
        }

        return builder.Build();
    }

    /// <summary>
    /// Builds a data source for <paramref name="connectionString"/> whose connections are never pooled
    /// (<c>Pooling=false</c>): closing one ends its session, so whatever the session kept (a LISTEN, a session lock)
    /// ends with it. In the same UTC sessions as <see cref="Build"/>; see <see cref="UnpooledConnections"/>.
    /// </summary>
    public static NpgsqlDataSource BuildUnpooled(string connectionString)
    {
        var builder = NewBuilder(connectionString);
        builder.ConnectionStringBuilder.Pooling = false;
        return builder.Build();
    }

    /// <summary>Whether <paramref name="connectionString"/> sets <c>No Reset On Close</c> itself (to anything).</summary>
    public static bool SetsNoResetOnClose(string connectionString) => Sets(connectionString, "noresetonclose");

    private static NpgsqlDataSourceBuilder NewBuilder(string connectionString)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        var builder = new NpgsqlDataSourceBuilder(connectionString);

        // Every session in UTC, whatever the server's or the database's default: the store's month partitions and the
        // append's cross-month checks add "1 month" to a timestamptz, which PostgreSQL does in the session's time zone
        // (in America/New_York, November's end came out at 01:00 UTC on 1 December, an hour of December's partition
        // taken for November's). A connection string asking for another zone is refused rather than obeyed.
        var zone = builder.ConnectionStringBuilder.Timezone;
        if (!string.IsNullOrEmpty(zone) && !string.Equals(zone, SessionTimeZone, StringComparison.OrdinalIgnoreCase))
        {
            throw new ArgumentException(
                $"The connection string sets Timezone={zone}; PumpFleet's sessions run in UTC (the event store's month partitions depend on it): remove the setting or set Timezone=UTC.",
                nameof(connectionString));
        }

        builder.ConnectionStringBuilder.Timezone = SessionTimeZone;
        return builder;
    }

    // Whether the connection string names the keyword itself (in any of Npgsql's spellings: "Max Auto Prepare",
    // "MaxAutoPrepare"), so that an explicit value, 0 or false included, always wins over the default.
    private static bool Sets(string connectionString, string keyword) =>
        new DbConnectionStringBuilder { ConnectionString = connectionString }.Keys.Cast<string>()
            .Any(k => string.Equals(k.Replace(" ", "", StringComparison.Ordinal), keyword, StringComparison.OrdinalIgnoreCase));
}
