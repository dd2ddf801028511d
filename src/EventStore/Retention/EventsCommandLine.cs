using System.Globalization;
using Npgsql;
using PumpFleet.EventStore.Audit;

namespace PumpFleet.EventStore.Retention;

/// <summary>
/// The body of the silo's <c>events</c> command (docs/operations.md): <c>events partitions</c> lists the monthly
/// partitions, <c>events archive --before=YYYY-MM-DD --out=DIR [--actor=name]</c> archives and drops every month that
/// ended by then (audited as <c>events.archive</c>), <c>events verify-archive MANIFEST</c> checks an archive's files.
/// </summary>
public static class EventsCommandLine
{
    /// <summary>The usage text.</summary>
    public const string Usage = """
        usage: events partitions
               events archive --before=YYYY-MM-DD --out=DIR [--actor=<name>]
               events verify-archive DIR/<partition>.manifest.json
        """;

    /// <summary>The words this command reads itself (the rest of the <c>--</c> words are host settings).</summary>
    public static bool IsOwnOption(string arg) =>
        arg.StartsWith("--before=", StringComparison.Ordinal) || arg.StartsWith("--out=", StringComparison.Ordinal)
        || arg.StartsWith(OperatorIdentity.ActorOption, StringComparison.Ordinal);

    /// <summary>Returns the exit code: 0 done, 1 a check failed, 2 a usage error.</summary>
    public static async Task<int> RunAsync(string[] args, Func<Task<NpgsqlDataSource>> dataSource, TimeProvider time, TextWriter output, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(output);
        var words = args.Where(a => !a.StartsWith("--", StringComparison.Ordinal)).ToList();
        string? Option(string name) => args.LastOrDefault(a => a.StartsWith(name, StringComparison.Ordinal))?[name.Length..];
        switch (words)
        {
            case ["partitions"]:
                foreach (var p in await new EventPartitions(await dataSource()).ListAsync(ct))
                {
                    await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                        $"{p.Name}\t{(p.From is { } f ? f.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) : "(beginning)")}\t{p.To:yyyy-MM-dd}\t{(p.ArchivedAt is { } a ? $"archived {a:u}" : "in table")}"));
                }

                return 0;

            case ["verify-archive", var manifest]:
                var check = await ArchiveFile.VerifyAsync(manifest, ct);
                ArchiveFile.Write(check, output);
                return check.Intact ? 0 : 1;

            case ["archive"]:
                var beforeText = Option("--before=");
                var dir = Option("--out=");
                if (beforeText is null || dir is null
                    || !DateOnly.TryParseExact(beforeText, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var before))
                {
                    await output.WriteLineAsync("events archive needs --before=YYYY-MM-DD (a UTC date) and --out=DIR.");
                    await output.WriteLineAsync(Usage);
                    return 2;
                }

                OperatorIdentity who;
                try
                {
                    who = OperatorIdentity.FromArguments(args);
                }
                catch (ArgumentException e)
                {
                    await output.WriteLineAsync(e.Message);
                    return 2;
                }

                var cutoff = new DateTimeOffset(before.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
                var done = await new EventArchiver(await dataSource(), time).ArchiveAsync(cutoff, Path.GetFullPath(dir), who.Actor, ct);
                foreach (var a in done)
                {
                    await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                        $"Archived {a.Partition}: {a.Events} events, {a.Streams} streams -> {a.ManifestPath} (events SHA-256 {a.EventsSha256}); partition dropped."));
                }

                if (done.Count == 0)
                {
                    await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"No partition ends by {before:yyyy-MM-dd}: nothing archived."));
                }

                return 0;

            default:
                await output.WriteLineAsync(Usage);
                return 2;
        }
    }
}
