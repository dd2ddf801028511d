using PumpFleet.Contracts.Grains;
using PumpFleet.Simulator;
using PumpFleet.Simulator.Generation;
using PumpFleet.Simulator.Transport;

namespace PumpFleet.Silo.Hosting;

/// <summary>
/// All-in-one mode: runs the fleet simulator in-process against the embedded broker, as real MQTT hubs, once the
/// host has started (the broker is listening by then). Options come from <c>PumpFleet:Simulator</c> (same names as
/// the simulator CLI's options class); by default the fleet starts 90 simulated days ago and runs up to now.
/// </summary>
public sealed partial class SimulatedFleetService(
    IConfiguration configuration, ILoggerFactory loggers, IHostApplicationLifetime lifetime, IGrainFactory grains, ILogger<SimulatedFleetService> logger)
    : BackgroundService
{
    /// <summary>Configuration section of the in-process simulator.</summary>
    public const string SectionName = "PumpFleet:Simulator";

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var registration = lifetime.ApplicationStarted.Register(() => started.TrySetResult());
        await started.Task.WaitAsync(stoppingToken);

        var options = new SimulatorOptions
        {
            Start = new DateTimeOffset(DateTime.UtcNow.Date.AddDays(-90), TimeSpan.Zero),
            Duration = TimeSpan.FromDays(90),
            Speed = 3600,
        };
        configuration.GetSection(SectionName).Bind(options);
        LogStarting(options.Pumps, options.Broker, options.Start, options.Speed);
        try
        {
            await CreateTherapiesAsync(options, stoppingToken);
            if (options.ResumeAt is null && options.Speed > 0 && await LastStoredEventAtAsync(options) is { } resume && resume > options.Start)
            {
                options.ResumeAt = resume;
                LogResuming(resume);
            }

            var result = await new FleetSimulator(loggers).RunAsync(options, stoppingToken);
            LogFinished(result.ToString() ?? "");
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down.
        }
    }

    /// <summary>
    /// The latest event time any of the simulated pumps already has (the database is kept between runs), from the
    /// pumps' own state; null for a new fleet. The simulation runs unpaced up to it, so a restart reports at once.
    /// </summary>
    private async Task<DateTimeOffset?> LastStoredEventAtAsync(SimulatorOptions options)
    {
        var serials = new FleetGenerator(options, null).Plan.Pumps.Select(p => p.Serial);
        var views = await Task.WhenAll(serials.Select(s => grains.GetGrain<IPumpQueryGrain>(s).GetStateAsync()));
        return views.Max(v => v.LastEventAt);
    }

    /// <summary>
    /// The simulated patients' therapies (trial to explant, <see cref="TherapyPlan"/>), recorded through the therapy
    /// grains as the HTTP API records clinicians' commands. A therapy that already exists (the database is kept
    /// between runs) is left as it is; a refused command is logged and ends that therapy's plan.
    /// </summary>
    private async Task CreateTherapiesAsync(SimulatorOptions options, CancellationToken ct)
    {
        var created = 0;
        foreach (var therapy in TherapyPlan.Create(options))
        {
            ct.ThrowIfCancellationRequested();
            var grain = grains.GetGrain<ITherapyGrain>(therapy.Id);
            if ((await grain.GetAsync()).Version > 0)
            {
                continue;
            }

            foreach (var command in therapy.Commands)
            {
                var result = await grain.ExecuteAsync(command);
                if (result.Error is not null)
                {
                    LogTherapyRefused(therapy.Id, command.Action, result.Reason ?? result.Error);
                    break;
                }
            }

            created++;
        }

        LogTherapies(created);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Simulated fleet: events up to {Resume:u} are already stored (kept database); replaying that part unpaced, reporting in real time after it")]
    private partial void LogResuming(DateTimeOffset resume);

    [LoggerMessage(Level = LogLevel.Information, Message = "Simulated therapies: {Count} recorded")]
    private partial void LogTherapies(int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Simulated therapy {Id}: {Action} refused ({Reason})")]
    private partial void LogTherapyRefused(string id, string action, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Simulated fleet: {Pumps} pumps on {Broker}, from {Start:u} at {Speed}x real time")]
    private partial void LogStarting(int pumps, string broker, DateTimeOffset start, double speed);

    [LoggerMessage(Level = LogLevel.Information, Message = "Simulated fleet finished: {Result}")]
    private partial void LogFinished(string result);
}
