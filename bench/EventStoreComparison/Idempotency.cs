using JasperFx.Events;
using Marten;
using Npgsql;
using PumpFleet.EventStore;
using PumpFleet.EventStore.Benchmarks;

namespace PumpFleet.EventStoreComparison;

/// <summary>One idempotency outcome.</summary>
public sealed record IdempotencyRow(string Variant, string Outcome, string Copies);

/// <summary>
/// An ambiguous commit: the writer's first append committed but the writer saw an error (timeout, dropped
/// connection), so it sends the very same batch, same event ids and same expected version, again.
/// </summary>
public static class Idempotency
{
    /// <summary>Runs every variant on fresh streams.</summary>
    public static async Task<IReadOnlyList<IdempotencyRow>> RunAsync(NpgsqlDataSource ds, NpgsqlEventStore ours, string cs)
    {
        var rows = new List<IdempotencyRow>();
        var batch = Rows.Make(100);

        await ours.AppendAsync("idem-ours", 0, batch.Select(e => e.Ours).ToList());
        var outcome = await OutcomeAsync(async () =>
        {
            var r = await ours.AppendAsync("idem-ours", 0, batch.Select(e => e.Ours).ToList());
            return $"success, AlreadyStored = {r.AlreadyStored}, next version {r.NextExpectedVersion}";
        });
        rows.Add(new("our store, same expected version", outcome, Copies(await EventTableProbes.CountEventIdsAsync(ds, [.. batch.Select(e => e.Id)]), batch.Length)));

        await using var quick = MartenStores.Create(cs, "mt_quick", EventAppendMode.Quick);
        await using var rich = MartenStores.Create(cs, "mt_rich", EventAppendMode.Rich);
        await using var unique = MartenStores.Create(cs, "mt_unique", EventAppendMode.Quick, uniqueEventIds: true);
        await unique.Storage.ApplyAllConfiguredChangesToDatabaseAsync();
        foreach (var (name, store, schema) in new[] { ("Marten Quick", quick, "mt_quick"), ("Marten Rich", rich, "mt_rich"), ("Marten Quick, EnableUniqueIndexOnEventId", unique, "mt_unique") })
        {
            batch = Rows.Make(100);
            var stream = $"idem-{schema}-occ";
            await MartenStores.AppendAsync(store, stream, 0, batch);
            outcome = await OutcomeAsync(async () =>
            {
                await MartenStores.AppendAsync(store, stream, 0, batch);
                return "success";
            });
            rows.Add(new($"{name}, same expected version", outcome, await CopiesAsync(ds, $"{schema}.mt_events", "id", batch)));

            batch = Rows.Make(100);
            stream = $"idem-{schema}-plain";
            await MartenStores.AppendUncheckedAsync(store, stream, batch);
            outcome = await OutcomeAsync(async () =>
            {
                await MartenStores.AppendUncheckedAsync(store, stream, batch);
                return "success";
            });
            rows.Add(new($"{name}, plain Append (no expected version)", outcome, await CopiesAsync(ds, $"{schema}.mt_events", "id", batch)));
        }

        return rows;
    }

    private static async Task<string> OutcomeAsync(Func<Task<string>> retry)
    {
        try
        {
            return await retry();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            var inner = e.InnerException is { } i ? $" ← {i.GetType().Name}" : "";
            return $"error: {e.GetType().Name}{inner}";
        }
    }

    private static async Task<string> CopiesAsync(NpgsqlDataSource ds, string table, string idColumn, BenchEvent[] batch)
    {
        await using var cmd = ds.CreateCommand($"SELECT count(*) FROM {table} WHERE {idColumn} = ANY($1)");
        cmd.Parameters.Add(new() { Value = batch.Select(e => e.Id).ToArray() });
        return Copies((long)(await cmd.ExecuteScalarAsync())!, batch.Length);
    }

    private static string Copies(long rows, int batchLength)
    {
        var copies = (double)rows / batchLength;
        return copies == 1 ? "1 (exactly once)" : copies == 0 ? "0 (ids not kept?)" : $"**{copies:0.##}**";
    }
}
