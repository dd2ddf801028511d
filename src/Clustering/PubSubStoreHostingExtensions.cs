using Orleans.Hosting;
using Orleans.Providers;

namespace PumpFleet.Clustering;

/// <summary>The stream pub-sub grains' state in the cluster's PostgreSQL (migration 033, table <c>pf_orleans_storage</c>).</summary>
public static class PubSubStoreHostingExtensions
{
    /// <summary>
    /// Registers the <c>PubSubStore</c> grain storage (the name Orleans' stream pub-sub asks for) on the ADO.NET grain
    /// storage with our own schema and query texts (<c>Sql/033_orleans_grain_storage.sql</c>). Explicit stream
    /// subscriptions (the live dashboard's) then outlive the silo that held their pub-sub grain: the grain is activated
    /// again elsewhere with its subscribers, instead of starting empty as with in-memory storage. Call it before the
    /// stream provider's registration (which registers in-memory storage only when none is there).
    /// </summary>
    public static ISiloBuilder AddPumpFleetPubSubStore(this ISiloBuilder silo, string connectionString)
    {
        ArgumentNullException.ThrowIfNull(silo);
        ArgumentException.ThrowIfNullOrEmpty(connectionString);
        return silo.AddAdoNetGrainStorage(ProviderConstants.DEFAULT_PUBSUB_PROVIDER_NAME, o =>
        {
            o.Invariant = ClusterHostingExtensions.NpgsqlInvariant;
            o.ConnectionString = connectionString;
        });
    }
}
