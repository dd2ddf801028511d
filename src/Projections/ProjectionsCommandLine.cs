using Microsoft.Extensions.DependencyInjection;
using PumpFleet.EventStore.Audit;

namespace PumpFleet.Projections;

/// <summary>
/// <c>projections rebuild [name]</c>, <c>projections list</c>, <c>projections parked [--all]</c> and
/// <c>projections parked retry &lt;id&gt;</c> for a host's command line, e.g.
/// <c>dotnet run --project src/Silo -- projections rebuild pumps</c>. The host builds its services as usual and
/// hands them over; the running cluster picks the reset up at its next poll. A rebuild is a write: it is recorded in
/// the audit trail (<c>projection.rebuild</c>, actor <c>cli:&lt;--actor or OS user&gt;@&lt;host&gt;</c>) before anything is reset, so
/// nothing is reset unaudited; a retry of a parked event is audited the same way (<c>projection.parked.retry</c>);
/// <c>list</c> and <c>parked</c> only read and are not audited.
/// </summary>
public static class ProjectionsCommandLine
{
    /// <summary>True when <paramref name="args"/> is a projections command.</summary>
    public static bool Matches(string[] args) => args is ["projections", ..];

    /// <summary>
    /// Runs the command and returns the process exit code. <paramref name="args"/> may carry <c>--Key=Value</c> settings
    /// (ignored here) and <c>--actor=&lt;name&gt;</c> (<see cref="OperatorIdentity"/>).
    /// </summary>
    public static async Task<int> RunAsync(string[] args, IServiceProvider services, TextWriter output, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        var rebuilder = services.GetRequiredService<ProjectionRebuilder>();
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

        switch (args.Where(a => !a.StartsWith("--", StringComparison.Ordinal)).ToArray())
        {
            case ["projections", "list"]:
                foreach (var n in rebuilder.Names.Order(StringComparer.Ordinal))
                {
                    await output.WriteLineAsync(n);
                }

                return 0;
            case ["projections", "rebuild"]:
                await AuditedAsync(services, who, "projection.rebuild", "*", () => rebuilder.RebuildAllAsync(ct), ct);
                await output.WriteLineAsync($"rebuilding: {string.Join(", ", rebuilder.Names)}");
                return 0;
            case ["projections", "rebuild", var name] when rebuilder.Exists(name):
                await AuditedAsync(services, who, "projection.rebuild", name, () => rebuilder.RebuildAsync(name, ct), ct);
                await output.WriteLineAsync($"rebuilding: {name}");
                return 0;
            case ["projections", "parked"]:
                var parked = await services.GetRequiredService<ParkedEventStore>().ListAsync(args.Contains("--all"), ct);
                await output.WriteLineAsync("id\tprojection\tpartition\tstream\tversion\ttype\tstatus\tattempts\tparked at\treason");
                foreach (var p in parked)
                {
                    await output.WriteLineAsync(string.Join('\t', p.Id, p.Projection, p.LogPartition, p.StreamId, p.Version, p.EventType, p.Status, p.Attempts,
                        p.ParkedAt.ToString("O", System.Globalization.CultureInfo.InvariantCulture), p.Reason.ReplaceLineEndings(" ")));
                }

                return 0;
            case ["projections", "parked", "retry", var idText]
                when long.TryParse(idText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id):
                var store = services.GetRequiredService<ParkedEventStore>();
                var asked = false;
                await AuditedAsync(services, who, "projection.parked.retry", idText, async () => asked = await store.RequestRetryAsync(id, who.Actor.Name, ct), ct);
                await output.WriteLineAsync(asked ? $"retry asked: {id} (applied by the worker owning its partition at its next poll)" : $"no event {id} is parked");
                return asked ? 0 : 1;
            default:
                await output.WriteLineAsync($"usage: projections list | projections rebuild [{string.Join("|", rebuilder.Names)}] | projections parked [--all] | projections parked retry <id> [{OperatorIdentity.ActorOption}<name>]");
                return 2;
        }
    }

    // The entry goes in first (when it cannot be written, nothing is reset and the command fails); a reset that then
    // fails gets a second entry with outcome 1, so the trail does not claim a rebuild that did not happen.
    private static async Task AuditedAsync(IServiceProvider services, OperatorIdentity who, string action, string target, Func<Task> run, CancellationToken ct)
    {
        var audit = services.GetRequiredService<AuditLog>();
        await audit.WriteAsync(new AuditEntry(who.Actor, action, target, 0, null, who.Detail()), ct);
        try
        {
            await run();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            await audit.WriteAsync(new AuditEntry(who.Actor, action, target, 1, null, who.Detail(("error", e.GetType().Name))), CancellationToken.None);
            throw;
        }
    }
}
