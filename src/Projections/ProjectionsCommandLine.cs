using Microsoft.Extensions.DependencyInjection;
using PumpFleet.EventStore.Audit;

namespace PumpFleet.Projections;

/// <summary>
/// <c>projections rebuild [name]</c> and <c>projections list</c> for a host's command line, e.g.
/// <c>dotnet run --project src/Silo -- projections rebuild pumps</c>. The host builds its services as usual and
/// hands them over; the running cluster picks the reset up at its next poll. A rebuild is a write: it is recorded in
/// the audit trail (<c>projection.rebuild</c>, actor <c>cli:&lt;--actor or OS user&gt;@&lt;host&gt;</c>) before anything is reset, so
/// nothing is reset unaudited; <c>list</c> reads names only and is not audited.
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
                await AuditedAsync(services, who, "*", () => rebuilder.RebuildAllAsync(ct), ct);
                await output.WriteLineAsync($"rebuilding: {string.Join(", ", rebuilder.Names)}");
                return 0;
            case ["projections", "rebuild", var name] when rebuilder.Exists(name):
                await AuditedAsync(services, who, name, () => rebuilder.RebuildAsync(name, ct), ct);
                await output.WriteLineAsync($"rebuilding: {name}");
                return 0;
            default:
                await output.WriteLineAsync($"usage: projections list | projections rebuild [{string.Join("|", rebuilder.Names)}] [{OperatorIdentity.ActorOption}<name>]");
                return 2;
        }
    }

    // The entry goes in first (when it cannot be written, nothing is reset and the command fails); a reset that then
    // fails gets a second entry with outcome 1, so the trail does not claim a rebuild that did not happen.
    private static async Task AuditedAsync(IServiceProvider services, OperatorIdentity who, string target, Func<Task> rebuild, CancellationToken ct)
    {
        var audit = services.GetRequiredService<AuditLog>();
        await audit.WriteAsync(new AuditEntry(who.Actor, "projection.rebuild", target, 0, null, who.Detail()), ct);
        try
        {
            await rebuild();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            await audit.WriteAsync(new AuditEntry(who.Actor, "projection.rebuild", target, 1, null, who.Detail(("error", e.GetType().Name))), CancellationToken.None);
            throw;
        }
    }
}
