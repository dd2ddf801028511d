using System.Diagnostics.Metrics;
using Npgsql;
using PumpFleet.EventStore.Audit;
using PumpFleet.EventStore.Integrity;
using PumpFleet.TestSupport;

namespace PumpFleet.EventStore.Tests;

/// <summary>The hash chain, the chain anchors, and the append-only event and audit tables (docs/security.md).</summary>
public sealed class IntegrityTests(PostgresFixture pg) : EventStoreTestBase(pg)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<(string A, string B)> TwoStreamsAsync()
    {
        var (a, b) = (NewStream(), NewStream());
        // Batches of several events chain through themselves inside one INSERT; keys out of order, unicode, nulls.
        await Store.AppendAsync(a, 0, [Evt(1, data: """{"z":1,"a":"é ü 😀","n":null}"""), Evt(2), Evt(3, type: "dose.delivered", data: """{"volumeMl":0.020}""")], Ct);
        await Store.AppendAsync(a, 3, [new EventToAppend(Guid.NewGuid(), "pump.paired", """{"hubId":"H1"}""", null, null, DateTimeOffset.UtcNow, Metadata: """{"by":"x"}""")], Ct);
        await Store.AppendAsync(b, 0, [Evt(1), Evt(2)], Ct);
        return (a, b);
    }

    private async Task ExecAsync(string sql, params object[] args)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        foreach (var a in args)
        {
            cmd.Parameters.Add(new() { Value = a });
        }

        await cmd.ExecuteNonQueryAsync(Ct);
    }

    // Tampering as an attacker with the table owner's rights would: switch the append-only trigger off, change a row, switch it on.
    private async Task TamperAsync(string sql, params object[] args)
    {
        await ExecAsync("ALTER TABLE pf_events DISABLE TRIGGER pf_events_append_only");
        foreach (var statement in sql.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            await ExecAsync(statement, args);
        }

        await ExecAsync("ALTER TABLE pf_events ENABLE TRIGGER pf_events_append_only");
    }

    [Fact]
    public async Task Verify_RecomputesEveryHashInDotNet_AndFindsTheFirstTamperedEvent()
    {
        var (a, b) = await TwoStreamsAsync();
        var verifier = new ChainVerifier(DataSource);
        var clean = await verifier.VerifyAsync(ct: Ct);
        Assert.True(clean.Intact, string.Join("; ", clean.Breaks));
        Assert.Equal((2L, 6L), (clean.Streams, clean.Events));

        await TamperAsync("UPDATE pf_events SET data = '{\"volumeMl\":0.2}' WHERE stream_id = $1 AND version = 3", a);

        var report = await verifier.VerifyAsync(ct: Ct);
        var broken = Assert.Single(report.Breaks);
        Assert.Equal((a, 3L), (broken.StreamId, broken.Version));
        Assert.True((await verifier.VerifyAsync(b, Ct)).Intact);
        var text = new StringWriter();
        ChainVerifier.Write(report, text);
        Assert.Contains($"BROKEN {a} at version 3", text.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Verify_ReportsADeletedEvent_AsAMissingVersion()
    {
        var (a, _) = await TwoStreamsAsync();
        await TamperAsync("DELETE FROM pf_events WHERE stream_id = $1 AND version = 2", a);
        var broken = Assert.Single((await new ChainVerifier(DataSource).VerifyAsync(a, Ct)).Breaks);
        Assert.Equal((a, 2L), (broken.StreamId, broken.Version));
        Assert.Contains("missing", broken.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Anchors_CatchAStreamRewrittenWithItsWholeChain()
    {
        var (a, _) = await TwoStreamsAsync();
        using var meterFactory = new TestMeterFactory();
        var writer = new ChainAnchorWriter(DataSource, meterFactory);
        // The horizon is server-wide: a transaction open in another test's database holds recent events back, so
        // anchors are written until they cover every event (usually at once).
        var firstAnchors = await AnchorUntilAsync(writer, 6);
        Assert.Null(await writer.AnchorAsync(Ct)); // nothing new since
        await Store.AppendAsync(a, 4, [Evt(9)], Ct);
        var second = Assert.Single(await AnchorUntilAsync(writer, 1));
        Assert.Equal((1L, 1L), (second.Events, second.Streams));
        var (value, digest) = ObserveAnchorGauge(meterFactory);
        Assert.Equal(second.Id, value);
        Assert.Equal(second.Digest, digest);

        // Rewrite version 3 and recompute the hashes after it with the database's own function: the walk holds...
        await TamperAsync("""
            UPDATE pf_events SET data = '{"volumeMl":0.2}' WHERE stream_id = $1 AND version = 3;
            UPDATE pf_events e SET hash = pf_event_hash((SELECT p.hash FROM pf_events p WHERE p.stream_id = e.stream_id AND p.version = e.version - 1),
                e.stream_id, e.version, e.event_id, e.event_type, e.seq, e.device_time, e.received_at, e.clock_suspect, e.data, e.metadata)
            WHERE stream_id = $1 AND version = 3;
            UPDATE pf_events e SET hash = pf_event_hash((SELECT p.hash FROM pf_events p WHERE p.stream_id = e.stream_id AND p.version = e.version - 1),
                e.stream_id, e.version, e.event_id, e.event_type, e.seq, e.device_time, e.received_at, e.clock_suspect, e.data, e.metadata)
            WHERE stream_id = $1 AND version = 4;
            UPDATE pf_events e SET hash = pf_event_hash((SELECT p.hash FROM pf_events p WHERE p.stream_id = e.stream_id AND p.version = e.version - 1),
                e.stream_id, e.version, e.event_id, e.event_type, e.seq, e.device_time, e.received_at, e.clock_suspect, e.data, e.metadata)
            WHERE stream_id = $1 AND version = 5
            """, a);

        // ...but the anchored heads no longer match.
        var report = await new ChainVerifier(DataSource).VerifyAsync(ct: Ct);
        var broken = Assert.Single(report.Breaks);
        Assert.Equal(a, broken.StreamId);
        Assert.Contains("anchored", broken.Reason, StringComparison.Ordinal);
        Assert.Equal(firstAnchors.Count + 1, report.Anchors);
    }

    private static async Task<List<ChainAnchor>> AnchorUntilAsync(ChainAnchorWriter writer, long events)
    {
        var anchors = new List<ChainAnchor>();
        await Eventually.TrueAsync(async () =>
        {
            if (await writer.AnchorAsync(Ct) is { } anchor)
            {
                anchors.Add(anchor);
            }

            return anchors.Sum(x => x.Events) >= events;
        }, TimeSpan.FromSeconds(30), $"anchors covered {events} events");
        Assert.Equal(events, anchors.Sum(x => x.Events));
        return anchors;
    }

    [Theory]
    [InlineData("UPDATE pf_events SET data = '{}'")]
    [InlineData("DELETE FROM pf_events")]
    [InlineData("TRUNCATE pf_events")]
    [InlineData("UPDATE pf_audit SET actor = 'someone-else'")]
    [InlineData("DELETE FROM pf_audit")]
    [InlineData("TRUNCATE pf_audit")]
    [InlineData("DELETE FROM pf_chain_anchors")]
    public async Task TheDatabase_RefusesToChangeAppendOnlyTables(string sql)
    {
        await TwoStreamsAsync();
        await new AuditLog(DataSource).WriteAsync(new AuditEntry(AuditActor.Operator("tester"), "test.write", "x", 0, null), Ct);
        using var meters = new TestMeterFactory();
        await AnchorUntilAsync(new ChainAnchorWriter(DataSource, meters), 6);
        var e = await Assert.ThrowsAsync<PostgresException>(() => ExecAsync(sql));
        Assert.Equal("PF001", e.SqlState);
        Assert.Contains("append-only", e.MessageText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnInsertOutsideTheStore_IsChainedByTheTrigger_AndAForgedHashIsReported()
    {
        var (a, _) = await TwoStreamsAsync();
        await ExecAsync("INSERT INTO pf_events (stream_id, version, event_id, event_type, received_at, data) VALUES ($1, 5, gen_random_uuid(), 'x', now(), '{}')", a);
        Assert.True((await new ChainVerifier(DataSource).VerifyAsync(a, Ct)).Intact);
        await ExecAsync("""
            INSERT INTO pf_events (stream_id, version, event_id, event_type, received_at, data, hash)
            VALUES ($1, 6, gen_random_uuid(), 'x', now(), '{}', '\x00'::bytea)
            """, a);
        var forged = Assert.Single((await new ChainVerifier(DataSource).VerifyAsync(a, Ct)).Breaks);
        Assert.Equal((a, 6L), (forged.StreamId, forged.Version));
        var e = await Assert.ThrowsAsync<PostgresException>(() => ExecAsync(
            "INSERT INTO pf_events (stream_id, version, event_id, event_type, received_at, data) VALUES ($1, 9, gen_random_uuid(), 'x', now(), '{}')", a));
        Assert.Equal("PF002", e.SqlState);
    }

    [Fact]
    public async Task AuditLog_WritesAndQueries_NewestFirst()
    {
        var audit = new AuditLog(DataSource);
        var target = NewStream();
        await audit.WriteAsync(new AuditEntry(new AuditActor("user", "ana", "analyst"), "pump.read", target, 200, "127.0.0.1",
            new Dictionary<string, string?> { ["asOf"] = "2026-01-01T00:00:00Z" }), Ct);
        await audit.WriteAsync(new AuditEntry(new AuditActor("machine", "api:bot", "viewer"), "pump.events.read", target, 403, "::1"), Ct);
        var rows = await audit.QueryAsync(new AuditQuery(Target: target), Ct);
        Assert.Equal(["pump.events.read", "pump.read"], rows.Select(r => r.Action));
        Assert.Contains("asOf", rows[1].Detail, StringComparison.Ordinal);
        Assert.Single(await audit.QueryAsync(new AuditQuery(Actor: "ana", Target: target), Ct));
        Assert.Single(await audit.QueryAsync(new AuditQuery(Target: target, BeforeId: rows[0].Id), Ct));
    }

    // Other test classes' anchor writers publish the same instrument in this process (each over its own database):
    // only this test's meters count, told apart by the factory that created them (the meter's scope).
    private static (long Value, string? Digest) ObserveAnchorGauge(IMeterFactory factory)
    {
        (long, string?) seen = default;
        using var listener = new MeterListener
        {
            InstrumentPublished = (i, l) =>
            {
                if (ReferenceEquals(i.Meter.Scope, factory) && i.Meter.Name == EventStoreInstruments.MeterName && i.Name == "pumpfleet.chain.anchor.id")
                {
                    l.EnableMeasurementEvents(i);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, v, tags, _) =>
        {
            foreach (var t in tags)
            {
                if (t.Key == "digest")
                {
                    seen = (v, t.Value as string);
                }
            }
        });
        listener.Start();
        listener.RecordObservableInstruments();
        return seen;
    }
}
