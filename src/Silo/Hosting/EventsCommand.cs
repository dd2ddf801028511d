using Npgsql;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Retention;

namespace PumpFleet.Silo.Hosting;

/// <summary>
/// <c>events partitions | archive --before=YYYY-MM-DD --out=DIR [--actor=&lt;name&gt;] | verify-archive MANIFEST</c>
/// (docs/operations.md "Event table partitions, retention and archival"); the rest of the <c>--Key=Value</c> words are
/// host settings (the connection string).
/// </summary>
public static class EventsCommand
{
    /// <summary>Runs the command; <paramref name="args"/> are the words after <c>events</c>.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        var settings = args.Where(a => a.StartsWith("--", StringComparison.Ordinal) && !EventsCommandLine.IsOwnOption(a)).ToArray();
        NpgsqlDataSource? dataSource = null;
        EventStore.Local.PrivatePostgres? localServer = null;
        try
        {
            // verify-archive reads files only; the database is opened when a subcommand asks for it.
            return await EventsCommandLine.RunAsync(args, async () =>
            {
                if (dataSource is null)
                {
                    var builder = WebApplication.CreateBuilder(settings);
                    (var connectionString, localServer) = await PumpFleetDatabase.ResolveAsync(builder.Configuration, _ => { });
                    dataSource = EventStoreDataSource.Build(connectionString);
                }

                return dataSource;
            }, TimeProvider.System, output);
        }
        finally
        {
            if (dataSource is not null)
            {
                await dataSource.DisposeAsync();
            }

            if (localServer is not null)
            {
                await localServer.StopAsync();
            }
        }
    }
}
