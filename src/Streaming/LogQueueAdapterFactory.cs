using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Streams;

namespace PumpFleet.Streaming;

/// <summary>The factory Orleans asks for the adapter, the queue mapper, the cache and the failure handler of the log streams.</summary>
public sealed class LogQueueAdapterFactory : IQueueAdapterFactory
{
    private readonly string _name;
    private readonly IServiceProvider _services;
    private readonly LogQueueMapper _mapper;
    private readonly LogQueueAdapterCache _cache;

    private LogQueueAdapterFactory(string name, IServiceProvider services)
    {
        _name = name;
        _services = services;
        _mapper = new LogQueueMapper(name);
        _cache = new LogQueueAdapterCache(services.GetService<IOptions<LogStreamOptions>>()?.Value ?? new LogStreamOptions());
    }

    /// <summary>The factory delegate for <c>AddPersistentStreams</c>.</summary>
    public static IQueueAdapterFactory Create(IServiceProvider services, string name) => new LogQueueAdapterFactory(name, services);

#pragma warning disable CS0672, CS0618 // the legacy member is still abstract in 10.4.2
    /// <inheritdoc />
    public Task<IQueueAdapter> CreateAdapter() => CreateAdapter(CancellationToken.None);
#pragma warning restore CS0672, CS0618

    /// <inheritdoc />
    public Task<IQueueAdapter> CreateAdapter(CancellationToken cancellationToken) => Task.FromResult<IQueueAdapter>(new LogQueueAdapter(_name, _services));

    /// <inheritdoc />
    public IQueueAdapterCache GetQueueAdapterCache() => _cache;

    /// <inheritdoc />
    public IStreamQueueMapper GetStreamQueueMapper() => _mapper;

    /// <inheritdoc />
    public Task<IStreamFailureHandler> GetDeliveryFailureHandler(Orleans.Streams.QueueId queueId) =>
        Task.FromResult<IStreamFailureHandler>(new LogDeliveryFailureHandler(
            _services.GetRequiredService<LogStreamInstruments>(),
            _services.GetRequiredService<ILoggerFactory>().CreateLogger("PumpFleet.Streaming.LogDeliveryFailureHandler")));
}
