using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using PumpFleet.EventStore.Integrity;
using PumpFleet.TestSupport;

namespace PumpFleet.EventStore.Tests;

/// <summary>
/// The group append's previous hash from the stream's head (Sql/049): the head keeps the hash of the event at its
/// version whichever way rows are inserted, the chains the group append builds from it verify, a head without it falls
/// back to the log, a tampered one shows as a break, the switch reads the log as 043 did, and an upgraded database gets
/// its heads' hashes from its rows.
/// </summary>
public sealed class HeadHashTests(PostgresFixture pg) : EventStoreTestBase(pg)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // Every head of these streams against the stored row at its version: (stream, head version, whether the hashes agree).
    private static async Task<List<(string Stream, long Version, bool Agrees)>> HeadsAsync(NpgsqlDataSource ds, params string[] streams)
    {
        await using var cmd = ds.CreateCommand("""
            SELECT h.stream_id, h.version, h.last_hash IS NOT NULL AND h.last_hash = e.hash
            FROM pf_stream_heads h JOIN pf_events e ON e.stream_id = h.stream_id AND e.version = h.version
            WHERE h.stream_id = ANY($1) ORDER BY h.stream_id
            """);
        cmd.Parameters.Add(new() { Value = streams });
        await using var r = await cmd.ExecuteReaderAsync(Ct);
        var list = new List<(string, long, bool)>();
        while (await r.ReadAsync(Ct))
        {
            list.Add((r.GetString(0), r.GetInt64(1), r.GetBoolean(2)));
        }

        return list;
    }

    private static async Task SetHeadHashAsync(NpgsqlDataSource ds, string stream, byte[]? hash)
    {
        await using var cmd = ds.CreateCommand("UPDATE pf_stream_heads SET last_hash = $2 WHERE stream_id = $1");
        cmd.Parameters.Add(new() { Value = stream });
        cmd.Parameters.Add(new() { Value = hash is null ? DBNull.Value : hash, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Bytea });
        Assert.Equal(1, await cmd.ExecuteNonQueryAsync(Ct));
    }

    private static async Task<ChainReport> VerifyAsync(NpgsqlDataSource ds, string stream) => await new ChainVerifier(ds).VerifyAsync(stream, Ct);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task TheHead_KeepsTheHashOfItsNewestEvent_WhicheverWayTheRowsCame(bool lookup)
    {
        await using var ds = lookup
            ? NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(ConnectionString) { Options = "-c pumpfleet.previous_hash=lookup" }.ConnectionString)
            : NpgsqlDataSource.Create(ConnectionString);
        var store = new NpgsqlEventStore(ds);
        await using var setBased = new GroupCommitter(ds, new GroupCommitOptions { Writers = 1, MaxStreams = 8, SetBased = true });
        await using var perStream = new GroupCommitter(ds, new GroupCommitOptions { Writers = 1, MaxStreams = 8, SetBased = false });
        var streams = Enumerable.Range(0, 5).Select(_ => NewStream()).ToArray();

        // Three rounds; in each, every stream gets events through one of the paths, several streams per group.
        for (var round = 0; round < 3; round++)
        {
            var version = round * 3L;
            await Task.WhenAll(streams.Take(3).Select(s => setBased.AppendAsync(new StreamAppend(s, version, [Evt(version + 1), Evt(version + 2), Evt(version + 3)]), Ct)));
            await perStream.AppendAsync(new StreamAppend(streams[3], version, [Evt(version + 1), Evt(version + 2), Evt(version + 3)]), Ct);
            await store.AppendAsync(streams[4], version, [Evt(version + 1), Evt(version + 2)], Ct);
            // A hand-written row: its hash is the BEFORE trigger's (003).
            await using var cmd = ds.CreateCommand("INSERT INTO pf_events (stream_id, version, event_id, event_type, received_at, data) VALUES ($1, $2, gen_random_uuid(), 'x', now(), '{}')");
            cmd.Parameters.Add(new() { Value = streams[4] });
            cmd.Parameters.Add(new() { Value = version + 3 });
            await cmd.ExecuteNonQueryAsync(Ct);
        }

        var heads = await HeadsAsync(ds, streams);
        Assert.Equal(5, heads.Count);
        Assert.All(heads, h => Assert.Equal(9, h.Version));
        Assert.All(heads, h => Assert.True(h.Agrees, $"{h.Stream}: the head's hash is not its newest event's"));
        foreach (var s in streams)
        {
            Assert.True((await VerifyAsync(ds, s)).Intact, s);
        }
    }

    [Fact]
    public async Task AHeadWithoutItsHash_ChainsFromTheLog_AndGetsItBack()
    {
        await using var committer = new GroupCommitter(DataSource, new GroupCommitOptions { Writers = 1, MaxStreams = 8 });
        var s = NewStream();
        await committer.AppendAsync(new StreamAppend(s, 0, [Evt(1), Evt(2)]), Ct);
        await SetHeadHashAsync(DataSource, s, null); // as a head of a database upgraded while an append was in flight

        await committer.AppendAsync(new StreamAppend(s, 2, [Evt(3)]), Ct);

        Assert.Equal(3, (await ReadAsync(s)).Count);
        Assert.True((await VerifyAsync(DataSource, s)).Intact);
        Assert.True(Assert.Single(await HeadsAsync(DataSource, s)).Agrees);
    }

    // The head is writable by the silo's role; a hash planted there chains the next event from it, and the offline
    // verification, which recomputes every link from the stored rows, reports that event: tamper-evident as before.
    [Fact]
    public async Task ATamperedHeadHash_ShowsAsABreakInTheChain()
    {
        await using var committer = new GroupCommitter(DataSource, new GroupCommitOptions { Writers = 1, MaxStreams = 8 });
        var s = NewStream();
        await committer.AppendAsync(new StreamAppend(s, 0, [Evt(1), Evt(2)]), Ct);
        Assert.True((await VerifyAsync(DataSource, s)).Intact);
        await SetHeadHashAsync(DataSource, s, new byte[32]);

        await committer.AppendAsync(new StreamAppend(s, 2, [Evt(3)]), Ct);

        var report = await VerifyAsync(DataSource, s);
        Assert.False(report.Intact);
        Assert.Equal(3, Assert.Single(report.Breaks).Version);
    }

    // Upgrade: a database with streams written by the release before (through 046) gets each head's hash from its row,
    // and appends go on chaining from it.
    [Fact]
    public async Task AnExistingDatabase_GetsItsHeadsHashesFromItsRows()
    {
        var cs = await Pg.CreateEmptyDatabaseAsync("headhash");
        await using var ds = NpgsqlDataSource.Create(cs);
        var migrator = new SchemaMigrator(ds, [], NullLogger<SchemaMigrator>.Instance);
        await migrator.MigrateAsync(46, Ct);
        var store = new NpgsqlEventStore(ds);
        var streams = new[] { NewStream(), NewStream() };
        await store.AppendAsync(streams[0], 0, [Evt(1), Evt(2), Evt(3)], Ct);
        await store.AppendAsync(streams[1], 0, [Evt(1)], Ct);

        Assert.Contains("049_head_last_hash", string.Join(',', await migrator.MigrateAsync(Ct)), StringComparison.Ordinal);

        Assert.All(await HeadsAsync(ds, streams), h => Assert.True(h.Agrees, h.Stream));
        await using var committer = new GroupCommitter(ds, new GroupCommitOptions { Writers = 1, MaxStreams = 8 });
        await Task.WhenAll(
            committer.AppendAsync(new StreamAppend(streams[0], 3, [Evt(4), Evt(5)]), Ct),
            committer.AppendAsync(new StreamAppend(streams[1], 1, [Evt(2)]), Ct));
        Assert.All(await HeadsAsync(ds, streams), h => Assert.True(h.Agrees, h.Stream));
        Assert.True((await new ChainVerifier(ds).VerifyAsync(ct: Ct)).Intact);
    }
}
