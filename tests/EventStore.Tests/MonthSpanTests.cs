using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using PumpFleet.EventStore.Integrity;
using PumpFleet.TestSupport;

namespace PumpFleet.EventStore.Tests;

/// <summary>
/// The cross-month checks by the stream's month span (Sql/046): what the head records, that a repeat in another month
/// is refused whichever way it comes (earlier or later month, one statement or two, the group append or the per-stream
/// path, a span unknown since before the migration), on both settings of the switch, and the upgrade of a database
/// with rows.
/// </summary>
public sealed class MonthSpanTests(PostgresFixture pg) : EventStoreTestBase(pg)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static DateTimeOffset MonthStart(DateTimeOffset t) => new(t.UtcDateTime.Year, t.UtcDateTime.Month, 1, 0, 0, 0, TimeSpan.Zero);

    private static readonly DateTimeOffset ThisMonth = MonthStart(DateTimeOffset.UtcNow).AddDays(2);
    private static readonly DateTimeOffset NextMonth = MonthStart(DateTimeOffset.UtcNow).AddMonths(1).AddDays(2);
    private static readonly DateTimeOffset LastMonth = MonthStart(DateTimeOffset.UtcNow).AddMonths(-1).AddDays(2);

    private static EventToAppend At(DateTimeOffset receivedAt, long? seq = null, Guid? id = null) =>
        Evt(seq, id: id) with { ReceivedAt = receivedAt };

    private static async Task<(DateTimeOffset? First, DateTimeOffset? Last)> SpanAsync(NpgsqlDataSource ds, string stream)
    {
        await using var cmd = ds.CreateCommand("SELECT first_month, last_month FROM pf_stream_heads WHERE stream_id = $1");
        cmd.Parameters.Add(new() { Value = stream });
        await using var r = await cmd.ExecuteReaderAsync(Ct);
        Assert.True(await r.ReadAsync(Ct), $"no head for {stream}");
        DateTimeOffset? first = await r.IsDBNullAsync(0, Ct) ? null : await r.GetFieldValueAsync<DateTimeOffset>(0, Ct);
        DateTimeOffset? last = await r.IsDBNullAsync(1, Ct) ? null : await r.GetFieldValueAsync<DateTimeOffset>(1, Ct);
        return (first, last);
    }

    // A data source whose sessions probe as 043 did (the benchmark's switch), or the default.
    private NpgsqlDataSource Source(bool everyRow) => everyRow
        ? NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(ConnectionString) { Options = "-c pumpfleet.cross_month_check=every-row" }.ConnectionString)
        : NpgsqlDataSource.Create(ConnectionString);

    [Fact]
    public async Task TheHead_RecordsTheMonthsOfItsStreamsRows_WidenedByEachAppend()
    {
        var s = NewStream();
        await Store.AppendAsync(s, 0, [At(ThisMonth, 1), At(ThisMonth, 2)], Ct);
        Assert.Equal((MonthStart(ThisMonth), MonthStart(ThisMonth)), await SpanAsync(DataSource, s));
        await Store.AppendAsync(s, 2, [At(NextMonth, 3)], Ct);
        Assert.Equal((MonthStart(ThisMonth), MonthStart(NextMonth)), await SpanAsync(DataSource, s));
        // A server clock behind the others: the span widens backwards too.
        await Store.AppendAsync(s, 3, [At(LastMonth, 4)], Ct);
        Assert.Equal((MonthStart(LastMonth), MonthStart(NextMonth)), await SpanAsync(DataSource, s));
        // A refused append leaves it as it was.
        await Assert.ThrowsAsync<WrongExpectedVersionException>(() => Store.AppendAsync(s, 4, [At(NextMonth.AddMonths(1), 4)], Ct));
        Assert.Equal((MonthStart(LastMonth), MonthStart(NextMonth)), await SpanAsync(DataSource, s));
    }

    [Theory]
    [InlineData(false, true)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    [InlineData(true, false)]
    public async Task ARepeatInAnotherMonth_IsRefused_InEitherDirection_OnEitherPath(bool everyRow, bool setBased)
    {
        await using var ds = Source(everyRow);
        var store = new NpgsqlEventStore(ds);
        await using var committer = new GroupCommitter(ds, new GroupCommitOptions { Writers = 1, MaxStreams = 8, SetBased = setBased });
        var (older, newer) = (NewStream(), NewStream());
        var (olderId, newerId) = (Guid.NewGuid(), Guid.NewGuid());
        await store.AppendAsync(older, 0, [At(LastMonth, 5, olderId)], Ct);
        await store.AppendAsync(newer, 0, [At(NextMonth, 5, newerId)], Ct);

        foreach (var (s, month) in new[] { (older, ThisMonth), (older, NextMonth), (newer, ThisMonth), (newer, LastMonth) })
        {
            // The same seq, and the same event id at the next version: neither is stored.
            await Assert.ThrowsAsync<WrongExpectedVersionException>(() => committer.AppendAsync(new StreamAppend(s, 1, [At(month, 5)]), Ct));
            var sameId = s == older ? olderId : newerId;
            Assert.True((await committer.AppendAsync(new StreamAppend(s, 1, [At(month, 6, sameId)]), Ct)).AlreadyStored);
            Assert.Single(await ReadAsync(s));
        }

        await committer.AppendAsync(new StreamAppend(older, 1, [At(ThisMonth, 6)]), Ct);
        Assert.Equal(2, (await ReadAsync(older)).Count);
    }

    // A new stream whose first statement repeats a seq or an event id across a month boundary: the span of the
    // statement's own rows is wider than either row's month, so they are probed against each other.
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ARepeatWithinOneStatement_AcrossAMonthBoundary_IsRefused(bool setBased)
    {
        await using var committer = new GroupCommitter(DataSource, new GroupCommitOptions { Writers = 1, MaxStreams = 8, SetBased = setBased });
        var s = NewStream();
        await Assert.ThrowsAnyAsync<Exception>(() => committer.AppendAsync(new StreamAppend(s, 0, [At(LastMonth, 5), At(ThisMonth, 5)]), Ct));
        var id = Guid.NewGuid();
        await Assert.ThrowsAnyAsync<Exception>(() => committer.AppendAsync(new StreamAppend(s, 0, [At(ThisMonth, 1, id), At(NextMonth, 2, id)]), Ct));
        Assert.Empty(await ReadAsync(s));

        // The same by hand, one INSERT of two rows in two months: the database itself refuses it.
        await using var cmd = DataSource.CreateCommand("""
            INSERT INTO pf_events (stream_id, version, event_id, event_type, seq, received_at, data)
            VALUES ($1, 1, gen_random_uuid(), 'x', 7, $2, '{}'), ($1, 2, gen_random_uuid(), 'x', 7, $3, '{}')
            """);
        cmd.Parameters.Add(new() { Value = s });
        cmd.Parameters.Add(new() { Value = LastMonth });
        cmd.Parameters.Add(new() { Value = ThisMonth });
        var e = await Assert.ThrowsAsync<PostgresException>(() => cmd.ExecuteNonQueryAsync(Ct));
        Assert.Equal(PostgresErrorCodes.UniqueViolation, e.SqlState);
        Assert.Equal("pf_events_stream_seq", e.ConstraintName);
        Assert.Empty(await ReadAsync(s));
    }

    // A head without a span (a stream whose rows were all archived before 046 has none to compute it from): every other
    // month is probed, and the span stays unknown.
    [Fact]
    public async Task AnUnknownSpan_ProbesEveryOtherMonth_AndStaysUnknown()
    {
        var s = NewStream();
        var id = Guid.NewGuid();
        await Store.AppendAsync(s, 0, [At(LastMonth, 5, id)], Ct);
        await using (var forget = DataSource.CreateCommand("UPDATE pf_stream_heads SET first_month = NULL, last_month = NULL WHERE stream_id = $1"))
        {
            forget.Parameters.Add(new() { Value = s });
            await forget.ExecuteNonQueryAsync(Ct);
        }

        await Assert.ThrowsAsync<WrongExpectedVersionException>(() => Store.AppendAsync(s, 1, [At(ThisMonth, 5)], Ct));
        Assert.True((await Store.AppendAsync(s, 1, [At(ThisMonth, 6, id)], Ct)).AlreadyStored);
        await Store.AppendAsync(s, 1, [At(ThisMonth, 6)], Ct);
        Assert.Equal((null, null), await SpanAsync(DataSource, s));
    }

    // Upgrade: a database with rows in two months written by the release before (through 045) gets each head's span
    // from its rows, and a repeat of an old row is refused afterwards.
    [Fact]
    public async Task AnExistingDatabase_GetsItsSpansFromItsRows_AndRepeatsStayRefused()
    {
        var cs = await Pg.CreateEmptyDatabaseAsync("span");
        await using var ds = NpgsqlDataSource.Create(cs);
        var migrator = new SchemaMigrator(ds, [], NullLogger<SchemaMigrator>.Instance);
        await migrator.MigrateAsync(45, Ct);
        var store = new NpgsqlEventStore(ds);
        var (twoMonths, oneMonth) = (NewStream(), NewStream());
        var id = Guid.NewGuid();
        await store.AppendAsync(twoMonths, 0, [At(LastMonth, 1, id), At(LastMonth, 2)], Ct);
        await store.AppendAsync(twoMonths, 2, [At(ThisMonth, 3)], Ct);
        await store.AppendAsync(oneMonth, 0, [At(ThisMonth, 1)], Ct);

        Assert.Contains("046_stream_month_span", string.Join(',', await migrator.MigrateAsync(Ct)), StringComparison.Ordinal);

        Assert.Equal((MonthStart(LastMonth), MonthStart(ThisMonth)), await SpanAsync(ds, twoMonths));
        Assert.Equal((MonthStart(ThisMonth), MonthStart(ThisMonth)), await SpanAsync(ds, oneMonth));
        await Assert.ThrowsAsync<WrongExpectedVersionException>(() => store.AppendAsync(twoMonths, 3, [At(ThisMonth, 1)], Ct));
        Assert.True((await store.AppendAsync(twoMonths, 3, [At(NextMonth, 9, id)], Ct)).AlreadyStored);
        await store.AppendAsync(twoMonths, 3, [At(ThisMonth, 4)], Ct);
        Assert.Equal([1L, 2, 3, 4], (await ReadAllVersionsAsync(store, twoMonths)));
        Assert.True((await new ChainVerifier(ds).VerifyAsync(ct: Ct)).Intact);
    }

    private static async Task<List<long>> ReadAllVersionsAsync(NpgsqlEventStore store, string stream)
    {
        var list = new List<long>();
        await foreach (var e in store.ReadStreamAsync(stream, 0, Ct))
        {
            list.Add(e.Version);
        }

        return list;
    }
}
