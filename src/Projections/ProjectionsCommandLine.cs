using Microsoft.Extensions.DependencyInjection;

namespace PumpFleet.Projections;

/// <summary>
/// <c>projections rebuild [name]</c> and <c>projections list</c> for a host's command line, e.g.
/// <c>dotnet run --project src/Silo -- projections rebuild pumps</c>. The host builds its services as usual and
/// hands them over; the running cluster picks the reset up at its next poll.
/// </summary>
public static class ProjectionsCommandLine
{
    /// <summary>True when <paramref name="args"/> is a projections command.</summary>
    public static bool Matches(string[] args) => args is ["projections", ..];

    /// <summary>Runs the command and returns the process exit code.</summary>
    public static async Task<int> RunAsync(string[] args, IServiceProvider services, TextWriter output, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        var rebuilder = services.GetRequiredService<ProjectionRebuilder>();
        switch (args)
        {
            case ["projections", "list"]:
                foreach (var n in rebuilder.Names.Order(StringComparer.Ordinal))
                {
                    await output.WriteLineAsync(n);
                }

                return 0;
            case ["projections", "rebuild"]:
                await rebuilder.RebuildAllAsync(ct);
                await output.WriteLineAsync($"rebuilding: {string.Join(", ", rebuilder.Names)}");
                return 0;
            case ["projections", "rebuild", var name] when rebuilder.Exists(name):
                await rebuilder.RebuildAsync(name, ct);
                await output.WriteLineAsync($"rebuilding: {name}");
                return 0;
            default:
                await output.WriteLineAsync($"usage: projections list | projections rebuild [{string.Join("|", rebuilder.Names)}]");
                return 2;
        }
    }
}
