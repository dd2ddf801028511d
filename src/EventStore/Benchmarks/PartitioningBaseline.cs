using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace PumpFleet.EventStore.Benchmarks;

/// <summary>
/// The layout before time partitioning, for the benchmark that compares the two in one run (docs/benchmarks.md): every
/// migration except 040, so <c>pf_events</c> stays the single table of 001–009 while the store's append (which reads
/// an archived stream's anchor, 041) works unchanged. Kept here because only the event store names its tables.
/// </summary>
public static class PartitioningBaseline
{
    /// <summary>Prepares an empty database with the unpartitioned event table.</summary>
    public static async Task PrepareUnpartitionedAsync(NpgsqlDataSource dataSource, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        var migrator = new SchemaMigrator(dataSource, [], NullLogger<SchemaMigrator>.Instance);
        await migrator.MigrateAsync(39, ct);
        foreach (var m in migrator.Migrations.Where(m => m.Number > 40))
        {
            await using var cmd = dataSource.CreateCommand(m.Sql);
            await cmd.ExecuteNonQueryAsync(ct);
        }
    }

    /// <summary>True when <c>pf_events</c> is partitioned in this database.</summary>
    public static async Task<bool> IsPartitionedAsync(NpgsqlDataSource dataSource, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        await using var cmd = dataSource.CreateCommand("SELECT relkind = 'p' FROM pg_class WHERE oid = 'pf_events'::regclass");
        return (bool)(await cmd.ExecuteScalarAsync(ct))!;
    }

    /// <summary>Bytes of the event table with its indexes (all partitions).</summary>
    public static async Task<long> EventTableBytesAsync(NpgsqlDataSource dataSource, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        // pg_partition_tree lists nothing for a table that is not partitioned.
        await using var cmd = dataSource.CreateCommand("""
            SELECT greatest(pg_total_relation_size('pf_events'),
                            (SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree('pf_events')))::bigint
            """);
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }

    /// <summary>EXPLAIN ANALYZE of one global-reader page from the start (the reader's own statement).</summary>
    public static async Task<string> ExplainGlobalPageAsync(NpgsqlDataSource dataSource, int limit, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        await using var cmd = dataSource.CreateCommand("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + NpgsqlEventStore.ReadAllSql);
        cmd.Parameters.Add(new() { Value = "0" });
        cmd.Parameters.Add(new() { Value = 0L });
        cmd.Parameters.Add(new() { Value = limit });
        var lines = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            lines.Add(r.GetString(0));
        }

        return string.Join('\n', lines);
    }
}
