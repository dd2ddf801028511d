using System.Reflection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Npgsql;
using PumpFleet.EventStore.Audit;
using PumpFleet.EventStore.Integrity;
using PumpFleet.EventStore.Retention;

namespace PumpFleet.EventStore;

/// <summary>Registration of the event store.</summary>
public static class EventStoreServiceCollectionExtensions
{
    /// <summary>The one name of the PumpFleet database's connection string in every process: <c>ConnectionStrings:PumpFleet</c> (env <c>ConnectionStrings__PumpFleet</c>).</summary>
    public const string ConnectionStringName = "PumpFleet";

    /// <summary>Registers the Npgsql data source (pooled) and <see cref="UnpooledConnections"/>, the event store (as <see cref="IEventStore"/> and by role: reader, writer, snapshots, checkpoints), its metrics and the schema migrator.</summary>
    public static IServiceCollection AddPumpFleetEventStore(this IServiceCollection services, string connectionString)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        // The pooled data source hands connections on without Npgsql's session reset unless EventStore:
        // ResetPooledConnections says otherwise; what keeps session state opens an unpooled connection instead.
        services.AddOptions<PooledConnectionOptions>()
            .Configure<IServiceProvider>((o, sp) => sp.GetService<IConfiguration>()?.GetSection(PooledConnectionOptions.SectionName).Bind(o))
            .PostConfigure(o => o.ConnectionString = connectionString)
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<PooledConnectionOptions>, PooledConnectionOptionsValidator>());
        services.TryAddSingleton(sp => EventStoreDataSource.Build(
            connectionString, sp.GetRequiredService<IOptions<PooledConnectionOptions>>().Value.ResetPooledConnections));
        services.TryAddSingleton(_ => new UnpooledConnections(connectionString));
        services.TryAddSingleton<EventStoreInstruments>();
        // Group commit (EventStore:GroupCommit, migration 042); read from configuration when the host has one.
        services.AddOptions<GroupCommitOptions>()
            .Configure<IServiceProvider>((o, sp) => sp.GetService<IConfiguration>()?.GetSection(GroupCommitOptions.SectionName).Bind(o))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<GroupCommitOptions>, GroupCommitOptionsValidator>());
        services.TryAddSingleton(sp => new GroupCommitter(sp.GetRequiredService<NpgsqlDataSource>(),
            sp.GetRequiredService<IOptions<GroupCommitOptions>>().Value, sp.GetRequiredService<EventStoreInstruments>()));
        services.TryAddSingleton<IEventStore>(sp => new NpgsqlEventStore(
            sp.GetRequiredService<NpgsqlDataSource>(), sp.GetRequiredService<EventStoreInstruments>(),
            sp.GetRequiredService<IOptions<GroupCommitOptions>>().Value.Enabled ? sp.GetRequiredService<GroupCommitter>() : null));
        // One instance, reachable by the role each caller needs.
        services.TryAddSingleton<IEventReader>(sp => sp.GetRequiredService<IEventStore>());
        services.TryAddSingleton<IEventWriter>(sp => sp.GetRequiredService<IEventStore>());
        services.TryAddSingleton<ISnapshotStore>(sp => sp.GetRequiredService<IEventStore>());
        services.TryAddSingleton<ICheckpointStore>(sp => sp.GetRequiredService<IEventStore>());
        // The partitioned reader and the append notifications of migration 007 (the log stream provider, src/Streaming).
        // Through the shared tail (EventStore:TailCache) unless it is switched off: one read of a partition's new
        // events serves every reader of the process. Its MaxAge is the database's real time, not the host's clock
        // (a test's fake clock that never moves would keep a stale answer forever).
        services.AddOptions<Log.LogTailCacheOptions>()
            .Configure<IServiceProvider>((o, sp) => sp.GetService<IConfiguration>()?.GetSection(Log.LogTailCacheOptions.SectionName).Bind(o))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<Log.LogTailCacheOptions>, Log.LogTailCacheOptionsValidator>());
        services.TryAddSingleton<Log.ILogPartitionReader>(sp =>
        {
            var store = (Log.ILogPartitionReader)sp.GetRequiredService<IEventStore>();
            var o = sp.GetRequiredService<IOptions<Log.LogTailCacheOptions>>().Value;
            return o.Enabled && store is Log.ILogPartitionHorizonReader horizon
                ? new Log.LogTailCache(store, horizon, o, TimeProvider.System, sp.GetRequiredService<EventStoreInstruments>())
                : store;
        });
        services.TryAddSingleton<Log.LogNotificationListener>();
        services.TryAddSingleton<SchemaMigrator>();
        services.TryAddSingleton<AuditLog>();
        services.TryAddSingleton<SignInFailureStore>();
        services.TryAddSingleton<ChainVerifier>();
        services.AddMetrics();
        services.TryAddSingleton<ChainAnchorWriter>();
        services.TryAddSingleton<EventPartitions>();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<EventArchiver>();
        return services;
    }

    /// <summary>Adds the event table's partition and retention job (options <see cref="EventRetentionOptions"/>); the silo runs it.</summary>
    public static IServiceCollection AddPumpFleetEventRetention(this IServiceCollection services)
    {
        services.AddOptions<EventRetentionOptions>().BindConfiguration(EventRetentionOptions.SectionName).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<EventRetentionOptions>, EventRetentionOptionsValidator>());
        services.AddHostedService<EventRetentionService>();
        return services;
    }

    /// <summary>Adds the periodic chain anchor job (options <see cref="ChainAnchorOptions"/>); the silo runs it.</summary>
    public static IServiceCollection AddPumpFleetChainAnchors(this IServiceCollection services)
    {
        services.AddOptions<ChainAnchorOptions>().BindConfiguration(ChainAnchorOptions.SectionName).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ChainAnchorOptions>, ChainAnchorOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.AddHostedService<ChainAnchorService>();
        return services;
    }

    /// <summary>Adds the embedded <c>Sql/NNN_name.sql</c> migrations of <paramref name="assembly"/>.</summary>
    public static IServiceCollection AddPumpFleetMigrations(this IServiceCollection services, Assembly assembly)
    {
        services.AddSingleton(new MigrationAssembly(assembly));
        return services;
    }
}
