using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using PumpFleet.Simulator.Faults;
using PumpFleet.Simulator.Generation;
using PumpFleet.Simulator.Time;

namespace PumpFleet.Simulator.Transport;

/// <summary>
/// Runs a fleet against a real MQTT broker: replays the pure <see cref="FleetGenerator"/> along a simulation clock
/// through one <see cref="HubClient"/> per hub, writes the ground truth, reports progress, and at the end waits for
/// the acks of everything sent.
/// </summary>
public sealed partial class FleetSimulator(
    ILoggerFactory? loggerFactory = null,
    IHubCredentials? credentials = null,
    TimeProvider? timeProvider = null,
    Func<SimulatorOptions, ISimulationClock>? clockFactory = null)
{
    private readonly ILoggerFactory _loggers = loggerFactory ?? NullLoggerFactory.Instance;
    private readonly TimeProvider _time = timeProvider ?? TimeProvider.System;
    private readonly ILogger _log = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("PumpFleet.Simulator");

    /// <summary>Counters of the current or last run.</summary>
    public SimulatorStats Stats { get; private set; } = new();

    /// <summary>The hubs of the current run (for tests and tools).</summary>
    public IReadOnlyList<HubClient> Hubs { get; private set; } = [];

    /// <summary>Runs the simulation until its simulated end (or cancellation), then drains acks.</summary>
    public async Task<SimulationResult> RunAsync(SimulatorOptions options, CancellationToken cancellationToken)
    {
        options.ThrowIfInvalid();
        var scenario = options.FaultsFile is null ? null : FaultScenario.Load(options.FaultsFile);
        var generator = new FleetGenerator(options, scenario);
        var clock = clockFactory?.Invoke(options)
            ?? (options.Speed == 0 ? new UnpacedSimulationClock(options.Start)
                : new ScaledSimulationClock(options.ResumeAt is { } resume && resume > options.Start ? resume : options.Start, options.Speed, _time));
        var secrets = credentials ?? new FleetSecretHubCredentials(options.FleetSecret);
        var stats = Stats = new SimulatorStats();
        var hubLog = _loggers.CreateLogger<HubClient>();
        var hubs = generator.Plan.Hubs
            .Select(h => new HubClient(h, options, secrets.GetSecret(h.HubId), clock, _time, stats, hubLog))
            .ToArray();
        Hubs = hubs;
        var byId = hubs.ToDictionary(h => h.HubId, StringComparer.Ordinal);
        using var groundTruth = options.GroundTruthFile is null ? null : GroundTruthWriter.Create(options.GroundTruthFile);
        long generated = 0;
        var faults = 0;
        try
        {
            Log.Starting(_log, generator.Plan.Pumps.Count, hubs.Length, options.Broker, options.Start, options.End, options.Speed);
            var connected = 0;
            foreach (var chunk in hubs.Chunk(64))
            {
                var results = await Task.WhenAll(chunk.Select(h => h.StartAsync(cancellationToken)));
                connected += results.Count(ok => ok);
            }

            if (connected == 0)
            {
                throw new InvalidOperationException($"No hub could connect to the broker at {options.Broker}.");
            }

            using var progressStop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var progress = ReportProgressAsync(options, clock, hubs, progressStop.Token);
            try
            {
                foreach (var item in generator.Generate())
                {
                    await clock.WaitUntilAsync(item.At, cancellationToken);
                    switch (item)
                    {
                        case PumpBatch batch:
                            generated += batch.Events.Count;
                            await byId[batch.HubId].PostAsync(batch, cancellationToken);
                            break;
                        case HubConnectivityChanged change:
                            await byId[change.HubId].PostAsync(change, cancellationToken);
                            break;
                        case FaultInjected fault:
                            faults++;
                            groundTruth?.Write(fault.Record);
                            break;
                    }
                }

                await Task.WhenAll(hubs.Select(h => h.CompleteAsync()));
                await DrainAsync(options, hubs, cancellationToken);
            }
            finally
            {
                await progressStop.CancelAsync();
                await progress;
            }

            await Task.WhenAll(hubs.Select(h => h.StopAsync()));
            var result = new SimulationResult(hubs.Length, generator.Plan.Pumps.Count, generated, stats.EventsPublished, stats.EventsResent,
                stats.AcksReceived, stats.RejectsReceived, stats.Reconnects, hubs.Sum(h => (long)h.Backlog), faults);
            Log.Finished(_log, result.EventsGenerated, result.EventsPublished, result.EventsResent, result.AcksReceived, result.RejectsReceived,
                result.Unacked, result.FaultsInjected);
            return result;
        }
        finally
        {
            foreach (var h in hubs)
            {
                await h.DisposeAsync();
            }
        }
    }

    /// <summary>Waits, in real time, until every sent event is acked or the drain timeout passes.</summary>
    private async Task DrainAsync(SimulatorOptions options, HubClient[] hubs, CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        while (hubs.Any(h => h.Backlog > 0))
        {
            if (_time.GetElapsedTime(started) >= options.DrainTimeout)
            {
                Log.DrainTimedOut(_log, hubs.Sum(h => (long)h.Backlog));
                return;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(50), _time, cancellationToken);
        }
    }

    private async Task ReportProgressAsync(SimulatorOptions options, ISimulationClock clock, HubClient[] hubs, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(options.ProgressInterval, _time);
        var lastEvents = 0L;
        var lastAt = _time.GetTimestamp();
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                var events = Stats.EventsPublished;
                var seconds = _time.GetElapsedTime(lastAt).TotalSeconds;
                lastAt = _time.GetTimestamp();
                var rate = seconds > 0 ? (events - lastEvents) / seconds : 0;
                lastEvents = events;
                Log.Progress(_log, clock.Now < options.End ? clock.Now : options.End, Math.Round(rate), events, Stats.AcksReceived, Stats.RejectsReceived,
                    hubs.Sum(h => (long)h.Backlog), hubs.Count(h => h.IsConnected), hubs.Length);
            }
        }
        catch (OperationCanceledException)
        {
            // The run ended.
        }
    }
}
