using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Orleans.Hosting;
using Orleans.Providers;
using Orleans.Runtime.Providers;
using Orleans.Storage;
using Orleans.Streams;

namespace PumpFleet.Streaming;

/// <summary>Registration of the log stream provider <see cref="LogStreams.ProviderName"/> in silos and clients.</summary>
public static class LogStreamHostingExtensions
{
    /// <summary>
    /// Silo side: the provider (receivers, balanced over the silos by Orleans' consistent-ring queue balancer and
    /// moved when a silo leaves or dies), its options (section <c>Streaming</c>, validated on start), instruments, and
    /// the <c>PubSubStore</c> grain storage that explicit subscriptions need, unless the host registered one. The event
    /// store must be registered. Does nothing when <c>Streaming:Enabled</c> is false.
    /// </summary>
    public static ISiloBuilder AddPumpFleetLogStreams(this ISiloBuilder silo, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(silo);
        ArgumentNullException.ThrowIfNull(configuration);
        if (!configuration.GetValue($"{LogStreamOptions.SectionName}:{nameof(LogStreamOptions.Enabled)}", true))
        {
            return silo;
        }

        AddServices(silo.Services);
        // Orleans looks the read-retry backoff up by the provider's name; without it a failed read waits 10–20 s.
        silo.Services.AddKeyedSingleton<IQueueReaderBackoffProvider, LogReadRetryBackoff>(LogStreams.ProviderName);
        // The same for a failed delivery or pub-sub registration (Orleans' default waits 1 s doubling to 30 s).
        silo.Services.AddKeyedSingleton<IMessageDeliveryBackoffProvider, LogDeliveryRetryBackoff>(LogStreams.ProviderName);
        // A delivery to a client lost with a SIGKILLed gateway silo is abandoned after Streaming:ClientDeliveryTimeout,
        // not the silo's 30-s response timeout (ClientDeliveryTimeout explains why only client consumers).
        silo.AddOutgoingGrainCallFilter<ClientDeliveryTimeout>();
        silo.AddPersistentStreams(LogStreams.ProviderName, LogQueueAdapterFactory.Create, s =>
        {
            s.ConfigurePullingAgent(ob => ob.Configure<IOptions<LogStreamOptions>>((o, log) => o.GetQueueMsgsTimerPeriod = log.Value.AgentPeriod));
            s.UseConsistentRingQueueBalancer();
            s.ConfigureStreamPubSub(StreamPubSubType.ExplicitGrainBasedAndImplicit);
        });

        // Explicit subscriptions (the dashboard's, a rewinding consumer's) live in the pub-sub grains' state. Kept in
        // memory per silo: a subscription whose rendezvous grain was on a dead silo is lost, and its subscriber
        // re-subscribes (LiveFeed checks its handles when its client's connection changes); a host that wants them
        // durable registers a "PubSubStore" grain storage of its own before this call.
        if (!silo.Services.Any(d => d.ServiceType == typeof(IGrainStorage) && Equals(d.ServiceKey, ProviderConstants.DEFAULT_PUBSUB_PROVIDER_NAME)))
        {
            silo.AddMemoryGrainStorage(ProviderConstants.DEFAULT_PUBSUB_PROVIDER_NAME);
        }

        return silo;
    }

    /// <summary>
    /// Client side (the dashboard): the provider, to subscribe to log streams (a client never reads the log itself),
    /// and <see cref="ClientConnectionChanges"/>, which tells a subscriber when to check that its subscriptions are
    /// still there.
    /// </summary>
    public static IClientBuilder AddPumpFleetLogStreams(this IClientBuilder client)
    {
        ArgumentNullException.ThrowIfNull(client);
        AddServices(client.Services);
        client.Services.TryAddSingleton<ClientConnectionChanges>();
        client.Services.AddSingleton<IClusterConnectionStatusObserver>(sp => sp.GetRequiredService<ClientConnectionChanges>());
        client.AddPersistentStreams(LogStreams.ProviderName, LogQueueAdapterFactory.Create, s =>
            s.ConfigureStreamPubSub(StreamPubSubType.ExplicitGrainBasedAndImplicit));
        return client;
    }

    private static void AddServices(IServiceCollection services)
    {
        services.AddOptions<LogStreamOptions>().BindConfiguration(LogStreamOptions.SectionName).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<LogStreamOptions>, LogStreamOptionsValidator>());
        services.AddMetrics();
        services.TryAddSingleton<LogStreamInstruments>();
    }
}
