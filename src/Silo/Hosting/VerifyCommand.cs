using Npgsql;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Audit;
using PumpFleet.EventStore.Integrity;

namespace PumpFleet.Silo.Hosting;

/// <summary>
/// <c>verify [streamId] [--actor=&lt;name&gt;] [--Key=Value ...]</c>: walks the event hash chains (every stream, or one) and
/// the chain anchors, records the check in the audit trail, prints the first broken link of each broken stream, and
/// exits 0 when everything holds, 1 otherwise (docs/security.md).
/// </summary>
public static class VerifyCommand
{
    /// <summary>Runs the command; <paramref name="args"/> are the words after <c>verify</c>.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        static bool IsSetting(string a) => a.StartsWith("--", StringComparison.Ordinal);
        var positional = args.Where(a => !IsSetting(a)).ToList();
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

        if (positional.Count > 1)
        {
            await output.WriteLineAsync("usage: verify [streamId] [--actor=<name>] [--ConnectionStrings:PumpFleet=...]");
            return 2;
        }

        var builder = WebApplication.CreateBuilder([.. args.Where(IsSetting)]);
        var (connectionString, localServer) = await PumpFleetDatabase.ResolveAsync(builder.Configuration, _ => { });
        try
        {
            await using var dataSource = EventStoreDataSource.Build(connectionString);
            return await VerifyCommandLine.RunAsync(dataSource, positional.Count == 1 ? positional[0] : null, who, output);
        }
        finally
        {
            if (localServer is not null)
            {
                await localServer.StopAsync();
            }
        }
    }
}
