using Npgsql;
using PumpFleet.EventStore.Audit;
using PumpFleet.EventStore.Integrity;
using PumpFleet.EventStore.Retention;
using PumpFleet.TestSupport;

namespace PumpFleet.EventStore.Tests;

/// <summary>Archival of whole months (Sql/041, EventArchiver): files that verify, rows gone, chains continuing from the anchors.</summary>
public sealed class ArchivalTests(PostgresFixture pg) : EventStoreTestBase(pg), IDisposable
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private static readonly DateTimeOffset ThisMonthStart = new(DateTimeOffset.UtcNow.Year, DateTimeOffset.UtcNow.Month, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset ThisMonth = ThisMonthStart.AddDays(2);
    private static readonly DateTimeOffset LastMonth = ThisMonthStart.AddMonths(-1).AddDays(2);
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "pf-archive-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private static EventToAppend At(DateTimeOffset receivedAt, long seq, string data = "{}") => Evt(seq, data: data) with { ReceivedAt = receivedAt };

    private Task SnapshotAsync(string stream, long version) => Store.SaveSnapshotAsync(new Snapshot(stream, version, 1, "{}"), Ct);

    private EventArchiver Archiver() => new(DataSource, TimeProvider.System);

    private async Task<long> CountAsync(string sql)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        return (long)(await cmd.ExecuteScalarAsync(Ct))!;
    }

    [Fact]
    public async Task Archive_WritesAVerifiedFile_DropsTheMonth_AndTheRestStillChainsFromTheAnchor()
    {
        var (a, b, c) = (NewStream(), NewStream(), NewStream());
        await Store.AppendAsync(a, 0, [At(LastMonth, 1, """{"z":1,"a":"é 😀"}"""), At(LastMonth, 2)], Ct);
        await Store.AppendAsync(a, 2, [At(ThisMonth, 3)], Ct);
        await Store.AppendAsync(b, 0, [At(LastMonth, 1)], Ct);
        await Store.AppendAsync(c, 0, [At(ThisMonth, 1)], Ct);
        await SnapshotAsync(a, 3);
        await SnapshotAsync(b, 1);
        // Anchors written before the archive still verify after it.
        using var meters = new TestMeterFactory();
        var anchors = new ChainAnchorWriter(DataSource, meters);
        long anchored = 0;
        await Eventually.TrueAsync(async () => (anchored += (await anchors.AnchorAsync(Ct))?.Events ?? 0) >= 5,
            TimeSpan.FromSeconds(30), "anchors over the five events");

        var done = await Archiver().ArchiveAsync(ThisMonthStart, _dir, AuditActor.Operator("tester"), Ct);

        var archive = Assert.Single(done);
        Assert.Equal("pf_events_initial", archive.Partition);
        Assert.Equal((3L, 2L), (archive.Events, archive.Streams));
        Assert.Equal(0L, await CountAsync($"SELECT count(*) FROM pf_events WHERE received_at < '{ThisMonthStart:O}'"));
        Assert.Equal(0L, await CountAsync("SELECT count(*) FROM pg_class WHERE relname = 'pf_events_initial'"));
        var check = await ArchiveFile.VerifyAsync(archive.ManifestPath, Ct);
        Assert.True(check.Intact, string.Join("; ", check.Problems));
        Assert.Equal(3, check.Events);

        var report = await new ChainVerifier(DataSource).VerifyAsync(ct: Ct);
        Assert.True(report.Intact, string.Join("; ", report.Breaks));
        Assert.Equal([3L], (await ReadAsync(a)).Select(e => e.Version));
        // Appends go on after the archive: a's chain continues in the table; b's, whose last event is archived, from its
        // archived head through the group-commit path (pf_append_streams, 042), grouped with c's in the table.
        await Store.AppendAsync(a, 3, [At(ThisMonth, 4)], Ct);
        await using (var committer = new GroupCommitter(DataSource, new GroupCommitOptions { Writers = 1, MaxStreams = 4 }))
        {
            var grouped = await Task.WhenAll(
                committer.AppendAsync(new StreamAppend(b, 1, [At(ThisMonth, 2)]), Ct),
                committer.AppendAsync(new StreamAppend(c, 1, [At(ThisMonth, 2)]), Ct));
            Assert.Equal([2L, 2L], grouped.Select(r => r.NextExpectedVersion));
        }

        Assert.True((await new ChainVerifier(DataSource).VerifyAsync(ct: Ct)).Intact);
        Assert.True((await new ChainVerifier(DataSource).VerifyAsync(b, Ct)).Intact);
        // Nothing else is due, and the audit trail has the archive.
        Assert.Empty(await Archiver().ArchiveAsync(ThisMonthStart, _dir, AuditActor.Operator("tester"), Ct));
        Assert.Equal(1L, await CountAsync("SELECT count(*) FROM pf_audit WHERE action = 'events.archive' AND target = 'pf_events_initial'"));
    }

    [Fact]
    public async Task TheEventsCommand_ArchivesVerifiesAndLists()
    {
        var a = NewStream();
        await Store.AppendAsync(a, 0, [At(LastMonth, 1)], Ct);
        await SnapshotAsync(a, 1);
        Task<NpgsqlDataSource> Db() => Task.FromResult(DataSource);

        var usage = new StringWriter();
        Assert.Equal(2, await EventsCommandLine.RunAsync(["archive", "--out=" + _dir], Db, TimeProvider.System, usage, Ct));
        Assert.Contains("--before=YYYY-MM-DD", usage.ToString(), StringComparison.Ordinal);

        var output = new StringWriter();
        Assert.Equal(0, await EventsCommandLine.RunAsync(
            ["archive", $"--before={ThisMonthStart:yyyy-MM-dd}", "--out=" + _dir, "--actor=tester"], Db, TimeProvider.System, output, Ct));
        Assert.Contains("Archived pf_events_initial: 1 events, 1 streams", output.ToString(), StringComparison.Ordinal);
        Assert.Equal(1L, await CountAsync("SELECT count(*) FROM pf_audit WHERE action = 'events.archive' AND actor LIKE 'cli:tester@%'"));

        var verify = new StringWriter();
        Assert.Equal(0, await EventsCommandLine.RunAsync(["verify-archive", ArchiveFile.ManifestPath(_dir, "pf_events_initial")], Db, TimeProvider.System, verify, Ct));
        Assert.StartsWith("Intact: pf_events_initial, 1 events", verify.ToString(), StringComparison.Ordinal);

        var list = new StringWriter();
        Assert.Equal(0, await EventsCommandLine.RunAsync(["partitions"], Db, TimeProvider.System, list, Ct));
        Assert.Contains("pf_events_initial\t(beginning)", list.ToString(), StringComparison.Ordinal);
        Assert.Contains($"pf_events_{ThisMonth:yyyy_MM}", list.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(3, null, null, true)]
    [InlineData(-1, null, null, false)]
    [InlineData(3, 12, null, false)]
    [InlineData(3, 12, "relative/dir", false)]
    [InlineData(3, 12, "/var/lib/pumpfleet/archive", true)]
    [InlineData(3, 0, "/var/lib/pumpfleet/archive", false)]
    public void RetentionOptions_AreValidated_AndTheDefaultKeepsEverything(int ahead, int? months, string? dir, bool valid)
    {
        Assert.Null(new EventRetentionOptions().ArchiveAfterMonths);
        var o = new EventRetentionOptions { PartitionsAhead = ahead, ArchiveAfterMonths = months, ArchiveDirectory = dir };
        Assert.Equal(valid, new EventRetentionOptionsValidator().Validate(null, o).Succeeded);
    }

    [Fact]
    public async Task AnArchiveFileChangedAfterwards_DoesNotVerify()
    {
        var a = NewStream();
        await Store.AppendAsync(a, 0, [At(LastMonth, 1, """{"volumeMl":0.02}"""), At(LastMonth, 2)], Ct);
        await SnapshotAsync(a, 2);
        var archive = Assert.Single(await Archiver().ArchiveAsync(ThisMonthStart, _dir, AuditActor.Operator("tester"), Ct));
        var eventsFile = Path.Combine(_dir, "pf_events_initial.events.ndjson");
        await File.WriteAllTextAsync(eventsFile, (await File.ReadAllTextAsync(eventsFile, Ct)).Replace("0.02", "0.20", StringComparison.Ordinal), Ct);

        var check = await ArchiveFile.VerifyAsync(archive.ManifestPath, Ct);
        Assert.False(check.Intact);
        Assert.Contains(check.Problems, p => p.Contains("SHA-256", StringComparison.Ordinal));
        Assert.Contains(check.Problems, p => p.Contains($"{a}: version 1", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AMonthThatIsNotAPrefixOfItsStreams_IsNotDropped()
    {
        // Version 1 received this month, version 2 "last month" (a clock that went back): archiving last month alone
        // would leave a stream that no longer starts at its anchor.
        var a = NewStream();
        await Store.AppendAsync(a, 0, [At(ThisMonth, 1)], Ct);
        await Store.AppendAsync(a, 1, [At(LastMonth, 2)], Ct);

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => Archiver().ArchiveAsync(ThisMonthStart, _dir, AuditActor.Operator("tester"), Ct));
        Assert.Contains("not a prefix", e.Message, StringComparison.Ordinal);
        Assert.Equal(1L, await CountAsync("SELECT count(*) FROM pg_class WHERE relname = 'pf_events_initial'"));
        Assert.Equal(2, (await ReadAsync(a)).Count);
    }

    [Fact]
    public async Task AMonthWhosePumpsHaveNoSnapshotPastIt_IsNotDropped()
    {
        var a = NewStream();
        await Store.AppendAsync(a, 0, [At(LastMonth, 1), At(LastMonth, 2)], Ct);
        await SnapshotAsync(a, 1);
        var e = await Assert.ThrowsAsync<PostgresException>(() => Archiver().ArchiveAsync(ThisMonthStart, _dir, AuditActor.Operator("tester"), Ct));
        Assert.Equal("PF003", e.SqlState);
        Assert.Contains("snapshot", e.MessageText, StringComparison.Ordinal);
        Assert.Equal(2, (await ReadAsync(a)).Count);
        await SnapshotAsync(a, 2);
        Assert.Single(await Archiver().ArchiveAsync(ThisMonthStart, _dir, AuditActor.Operator("tester"), Ct));
        Assert.Empty(await ReadAsync(a));
        // The pump comes back after its only months were archived: its chain continues from the anchor.
        await Store.AppendAsync(a, 2, [At(ThisMonth, 3)], Ct);
        Assert.True((await new ChainVerifier(DataSource).VerifyAsync(a, Ct)).Intact);
    }

    [Fact]
    public async Task TheDatabase_RefusesToDropAPartitionTheArchiveDoesNotDescribe()
    {
        var a = NewStream();
        await Store.AppendAsync(a, 0, [At(LastMonth, 1), At(LastMonth, 2)], Ct);
        await using var cmd = DataSource.CreateCommand("SELECT pf_events_archive_partition('pf_events_initial', 1, $1, 'x', 'y', 'operator:tester')");
        cmd.Parameters.Add(new() { Value = new byte[32] });
        var e = await Assert.ThrowsAsync<PostgresException>(() => cmd.ExecuteScalarAsync(Ct));
        Assert.Equal("PF003", e.SqlState);
        Assert.Contains("nothing dropped", e.MessageText, StringComparison.Ordinal);
        Assert.Equal(2, (await ReadAsync(a)).Count);

        // The current month is never archived, whatever the caller says.
        await using var current = DataSource.CreateCommand($"SELECT pf_events_archive_partition('pf_events_{ThisMonth:yyyy_MM}', 0, $1, 'x', 'y', 'operator:tester')");
        current.Parameters.Add(new() { Value = new byte[32] });
        Assert.Equal("PF003", (await Assert.ThrowsAsync<PostgresException>(() => current.ExecuteScalarAsync(Ct))).SqlState);
    }
}
