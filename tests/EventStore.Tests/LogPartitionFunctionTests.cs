using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using PumpFleet.EventStore.Log;
using PumpFleet.TestSupport;

namespace PumpFleet.EventStore.Tests;

/// <summary>
/// pf_log_partition computed on four bits (Sql/045) is 007's FNV-1a mod 16 for every stream id: a stream's rows stored
/// before and after the migration are in one log partition, the one the C# queue mapper computes.
/// </summary>
public sealed class LogPartitionFunctionTests(PostgresFixture pg) : EventStoreTestBase(pg)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // 007's definition, kept here to compare with (a test's copy of our own migration).
    private const string Fnv32Of007 = """
        CREATE OR REPLACE FUNCTION pf_log_partition_007(stream_id text) RETURNS smallint
        LANGUAGE plpgsql IMMUTABLE STRICT AS $$
        DECLARE
            bytes bytea := convert_to(stream_id, 'UTF8');
            h bigint := 2166136261;
        BEGIN
            FOR i IN 0 .. length(bytes) - 1 LOOP
                h := ((h # get_byte(bytes, i)) * 16777619) & 4294967295;
            END LOOP;
            RETURN (h % 16)::smallint;
        END $$;
        """;

    // Fixed: the ids are the same in every run.
    private static List<string> Ids()
    {
        var random = new Random(20261130);
        // Whole characters (a surrogate pair is one: half of one is not valid UTF-16, nor storable text).
        string[] alphabet = ["a", "b", "c", "X", "Y", "Z", "0", "1", "9", "-", ":", ".", "_", " ", "ä", "ö", "ü", "ß", "Ω", "泵", "€", "😀"];
        var ids = new List<string> { "", "a", "ß", "SN0001", "cohort:SynchroMed II:4.2:L-77", "Grüße-Ω-泵-1" };
        for (var i = 0; i < 3000; i++)
        {
            ids.Add(string.Concat(Enumerable.Range(0, random.Next(1, 40)).Select(_ => alphabet[random.Next(alphabet.Length)])));
        }

        // Serial-like ids as the platform writes them, and random GUIDs.
        ids.AddRange(Enumerable.Range(0, 500).Select(i => $"SN{i:D6}"));
        ids.AddRange(Enumerable.Range(0, 500).Select(_ => new Guid(random.GetItems<byte>(Enumerable.Range(0, 256).Select(b => (byte)b).ToArray(), 16)).ToString()));
        return ids;
    }

    [Fact]
    public async Task TheFourBitFunction_Equals007sFnv1a_AndTheQueueMapper_ForEveryId()
    {
        await using (var create = DataSource.CreateCommand(Fnv32Of007))
        {
            await create.ExecuteNonQueryAsync(Ct);
        }

        var ids = Ids();
        await using var cmd = DataSource.CreateCommand("SELECT s, pf_log_partition(s), pf_log_partition_007(s) FROM unnest($1::text[]) AS s");
        cmd.Parameters.Add(new() { Value = ids.ToArray() });
        await using var r = await cmd.ExecuteReaderAsync(Ct);
        var seen = 0;
        var mismatches = new List<string>();
        while (await r.ReadAsync(Ct))
        {
            var id = r.GetString(0);
            var expected = LogPartitioning.PartitionOf(id);
            if (r.GetInt16(1) != expected || r.GetInt16(2) != expected)
            {
                mismatches.Add($"'{id}': 045 {r.GetInt16(1)}, 007 {r.GetInt16(2)}, C# {expected}");
            }

            seen++;
        }

        Assert.Equal(ids.Count, seen);
        Assert.Empty(mismatches);
    }

    [Fact]
    public async Task RowsStoredBefore045_StayInTheirPartition_AndLaterRowsOfTheirStreamJoinThem()
    {
        var cs = await Pg.CreateEmptyDatabaseAsync("lp045");
        await using var ds = NpgsqlDataSource.Create(cs);
        var migrator = new SchemaMigrator(ds, [], NullLogger<SchemaMigrator>.Instance);
        await migrator.MigrateAsync(44, Ct);
        var store = new NpgsqlEventStore(ds);
        var streams = Ids().Where(s => s.Length > 0).Take(200).ToList();
        foreach (var s in streams)
        {
            await store.AppendAsync(s, 0, [Evt(1)], Ct);
        }

        Assert.Contains("045_log_partition_low_bits", await migrator.MigrateAsync(Ct));
        foreach (var s in streams)
        {
            await store.AppendAsync(s, 1, [Evt(2)], Ct);
        }

        await using var cmd = ds.CreateCommand("""
            SELECT count(*) FILTER (WHERE log_partition <> pf_log_partition(stream_id)),
                   (SELECT count(*) FROM (SELECT stream_id FROM pf_events GROUP BY stream_id HAVING count(DISTINCT log_partition) > 1) AS split),
                   count(*)
            FROM pf_events
            """);
        await using var r = await cmd.ExecuteReaderAsync(Ct);
        await r.ReadAsync(Ct);
        Assert.Equal(0L, r.GetInt64(0));
        Assert.Equal(0L, r.GetInt64(1));
        Assert.Equal(2L * streams.Count, r.GetInt64(2));
    }
}
