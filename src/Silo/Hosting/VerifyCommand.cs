using Npgsql;
using PumpFleet.EventStore.Integrity;

namespace PumpFleet.Silo.Hosting;

/// <summary>
/// <c>verify [streamId] [--Key=Value ...]</c>: walks the event hash chains (every stream, or one) and the chain anchors,
/// prints the first broken link of each broken stream, and exits 0 when everything holds, 1 otherwise (docs/security.md).
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
        if (positional.Count > 1)
        {
            await output.WriteLineAsync("usage: verify [streamId] [--ConnectionStrings:PumpFleet=...]");
            return 2;
        }

        var builder = WebApplication.CreateBuilder([.. args.Where(IsSetting)]);
        var (connectionString, localServer) = await PumpFleetDatabase.ResolveAsync(builder.Configuration, _ => { });
        try
        {
            await using var dataSource = NpgsqlDataSource.Create(connectionString);
            var report = await new ChainVerifier(dataSource).VerifyAsync(positional.Count == 1 ? positional[0] : null);
            ChainVerifier.Write(report, output);
            return report.Intact ? 0 : 1;
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
