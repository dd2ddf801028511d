using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using PumpFleet.EventStore.Audit;

namespace PumpFleet.EventStore.Retention;

/// <summary>Options of the event table's partition and retention job (section <c>EventStore:Retention</c>).</summary>
public sealed class EventRetentionOptions
{
    /// <summary>Configuration section.</summary>
    public const string SectionName = "EventStore:Retention";

    /// <summary>Monthly partitions kept ready after the current month. Default: 3 (0–24).</summary>
    public int PartitionsAhead { get; set; } = 3;

    /// <summary>How often the job runs (partitions, then archival when configured). Default: 1 h (1 min – 1 d).</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// Archive and drop months that ended at least this many months ago (1–1200). Default: null, keep everything in the
    /// table: this is clinical data, and how long it stays online is the operator's decision, not a default.
    /// </summary>
    public int? ArchiveAfterMonths { get; set; }

    /// <summary>Where archives are written (an absolute path); required with <see cref="ArchiveAfterMonths"/>.</summary>
    public string? ArchiveDirectory { get; set; }
}

/// <summary>Checks <see cref="EventRetentionOptions"/> at start-up (registered with <c>ValidateOnStart</c>).</summary>
public sealed class EventRetentionOptionsValidator : IValidateOptions<EventRetentionOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, EventRetentionOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        var errors = new List<string>();
        if (o.PartitionsAhead is < 0 or > 24)
        {
            errors.Add($"EventStore:Retention:PartitionsAhead must be between 0 and 24, not {o.PartitionsAhead}.");
        }

        if (o.Interval < TimeSpan.FromMinutes(1) || o.Interval > TimeSpan.FromDays(1))
        {
            errors.Add($"EventStore:Retention:Interval must be between 1 min and 1 d, not {o.Interval}.");
        }

        if (o.ArchiveAfterMonths is { } months)
        {
            if (months is < 1 or > 1200)
            {
                errors.Add($"EventStore:Retention:ArchiveAfterMonths must be between 1 and 1200 (or unset to keep everything), not {months}.");
            }

            // Never drop a month without a file to hold it.
            if (string.IsNullOrWhiteSpace(o.ArchiveDirectory) || !Path.IsPathFullyQualified(o.ArchiveDirectory))
            {
                errors.Add("EventStore:Retention:ArchiveDirectory must be an absolute path when ArchiveAfterMonths is set.");
            }
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

/// <summary>
/// Keeps monthly partitions of the event table ready ahead of time and, when <see cref="EventRetentionOptions.ArchiveAfterMonths"/>
/// is set, archives the months past retention (<see cref="EventArchiver"/>); runs in the silo, at start and every
/// <see cref="EventRetentionOptions.Interval"/>.
/// </summary>
internal sealed partial class EventRetentionService(
    EventPartitions partitions, EventArchiver archiver, IOptions<EventRetentionOptions> options, TimeProvider time, ILogger<EventRetentionService> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        using var timer = new PeriodicTimer(o.Interval, time);
        do
        {
            try
            {
                await RunOnceAsync(o, stoppingToken);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or IOException or InvalidOperationException && !stoppingToken.IsCancellationRequested)
            {
                // The next run tries again; partitions are made months ahead, so a missed run costs nothing yet.
                LogFailed(e);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    private bool _reported;

    internal async Task RunOnceAsync(EventRetentionOptions o, CancellationToken ct)
    {
        foreach (var p in await partitions.EnsureAsync(o.PartitionsAhead, ct))
        {
            LogCreated(p.Name, p.From, p.To);
        }

        if (!_reported)
        {
            // Once per start, so the log always says how far ahead the table is ready, created now or earlier.
            var inTable = (await partitions.ListAsync(ct)).Where(p => p.ArchivedAt is null).ToList();
            LogReady(inTable.Count, inTable.Count == 0 ? null : inTable[^1].To, o.ArchiveAfterMonths);
            _reported = true;
        }

        if (o.ArchiveAfterMonths is { } months && o.ArchiveDirectory is { } directory)
        {
            var now = time.GetUtcNow();
            var before = new DateTimeOffset(now.Year, now.Month, 1, 0, 0, 0, TimeSpan.Zero).AddMonths(-months);
            foreach (var a in await archiver.ArchiveAsync(before, directory, new AuditActor("system", "event-retention", null), ct))
            {
                LogArchived(a.Partition, a.Events, a.Streams, a.ManifestPath, a.EventsSha256);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Event table partition {Name} created ahead of time for events received from {From:u} to {To:u}")]
    private partial void LogCreated(string name, DateTimeOffset? from, DateTimeOffset to);

    [LoggerMessage(Level = LogLevel.Information, Message = "Event table partitions: {Count} monthly partitions in the table, ready for events received until {Through:u}; retention: archive after {ArchiveAfterMonths} months (empty: keep everything)")]
    private partial void LogReady(int count, DateTimeOffset? through, int? archiveAfterMonths);

    [LoggerMessage(Level = LogLevel.Information, Message = "Event table partition {Name} archived ({Events} events, {Streams} streams) to {Manifest} (SHA-256 {Sha256}) and dropped")]
    private partial void LogArchived(string name, long events, long streams, string manifest, string sha256);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The event table's partition and retention job failed; it runs again at the next interval")]
    private partial void LogFailed(Exception e);
}
