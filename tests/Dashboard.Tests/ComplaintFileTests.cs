using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using PumpFleet.TestSupport;

namespace PumpFleet.Dashboard.Tests;

/// <summary>
/// <c>GET /api/pumps/{serial}/complaint-file</c> against the real store (events), read model (anomalies) and audit
/// trail in PostgreSQL. SN0017 is this class's own pump: a flow-stall anomaly 20 h after the seed's start.
/// </summary>
public sealed class ComplaintFileTests(DashboardApp app)
{
    private const string Serial = "SN0017";
    private const string AnomalyId = "A-SN0017-flow";
    // A note with everything CSV must escape, and a formula a spreadsheet would run.
    private const string Note = "=HYPERLINK(\"http://x\"), called \"Dr. A\"\nsecond line";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task AcknowledgeOnceAsync()
    {
        if (await app.CountAsync($"SELECT count(*) FROM pf_anomalies WHERE id = '{AnomalyId}' AND status = 'acknowledged'") == 1)
        {
            return;
        }

        using var res = await app.Http.PostAsync($"/api/anomalies/{AnomalyId}/acknowledge", JsonContent.Create(new { note = Note }), Ct);
        Assert.True(res.IsSuccessStatusCode, await res.Content.ReadAsStringAsync(Ct));
        await Eventually.TrueAsync(async () => await app.CountAsync(
            $"SELECT count(*) FROM pf_anomalies WHERE id = '{AnomalyId}' AND status = 'acknowledged'") == 1, TimeSpan.FromSeconds(20), "the acknowledgement in the read model");
    }

    [Fact]
    public async Task Json_HoldsEveryEventAnomalyAcknowledgementAndAuditEntry_AndIsItselfAudited()
    {
        await AcknowledgeOnceAsync();
        var before = await app.CountAsync($"SELECT count(*) FROM pf_audit WHERE action = 'pump.complaint-file' AND target = '{Serial}'");
        using var res = await app.Http.GetAsync($"/api/pumps/{Serial}/complaint-file", Ct);
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        Assert.Equal("application/json", res.Content.Headers.ContentType?.MediaType);
        Assert.Contains($"complaint-{Serial}.json", res.Content.Headers.ContentDisposition?.ToString() ?? "", StringComparison.Ordinal);
        var file = JsonNode.Parse(await res.Content.ReadAsStringAsync(Ct))!;
        Assert.Equal(Serial, file["serial"]!.GetValue<string>());

        var events = file["events"]!.AsArray();
        Assert.Equal(await app.CountAsync($"SELECT count(*) FROM pf_events WHERE stream_id = '{Serial}'"), events.Count);
        Assert.Equal(Enumerable.Range(1, events.Count).Select(v => (long)v), events.Select(e => e!["version"]!.GetValue<long>()));
        Assert.Contains(events, e => e!["type"]!.GetValue<string>() == "anomaly.detected" && e["data"]!["anomalyId"]!.GetValue<string>() == AnomalyId);
        Assert.Contains(events, e => e!["type"]!.GetValue<string>() == "anomaly.acknowledged" && e["data"]!["note"]!.GetValue<string>() == Note);

        var anomaly = Assert.Single(file["anomalies"]!.AsArray())!;
        Assert.Equal(AnomalyId, anomaly["id"]!.GetValue<string>());
        Assert.Equal("acknowledged", anomaly["status"]!.GetValue<string>());
        var ack = Assert.Single(file["acknowledgements"]!.AsArray())!;
        Assert.Equal("acknowledged", ack["action"]!.GetValue<string>());
        Assert.Equal(Note, ack["note"]!.GetValue<string>());
        Assert.Equal("local-admin", ack["by"]!.GetValue<string>());
        // The audit entries about the pump and its anomaly: the acknowledgement at least.
        Assert.Contains(file["audit"]!.AsArray(), a => a!["action"]!.GetValue<string>() == "anomaly.acknowledge" && a["target"]!.GetValue<string>() == AnomalyId);

        Assert.Equal(before + 1, await app.CountAsync($"SELECT count(*) FROM pf_audit WHERE action = 'pump.complaint-file' AND target = '{Serial}'"));
    }

    [Fact]
    public async Task Period_KeepsOnlyWhatHappenedInIt()
    {
        var start = app.Seed.Start;
        var from = Uri.EscapeDataString(start.AddHours(10).ToString("O"));
        var to = Uri.EscapeDataString(start.AddHours(30).ToString("O"));
        var file = JsonNode.Parse(await app.Http.GetStringAsync($"/api/pumps/{Serial}/complaint-file?from={from}&to={to}", Ct))!;
        var events = file["events"]!.AsArray();
        Assert.NotEmpty(events);
        Assert.All(events, e =>
        {
            var at = e!["at"]!.GetValue<DateTimeOffset>();
            Assert.InRange(at, start.AddHours(10), start.AddHours(30));
        });
        Assert.True(events.Count < await app.CountAsync($"SELECT count(*) FROM pf_events WHERE stream_id = '{Serial}'"));
        // The anomaly was detected at +20 h, inside the period.
        Assert.Single(file["anomalies"]!.AsArray());

        var early = JsonNode.Parse(await app.Http.GetStringAsync(
            $"/api/pumps/{Serial}/complaint-file?to={Uri.EscapeDataString(start.AddHours(5).ToString("O"))}", Ct))!;
        Assert.Empty(early["anomalies"]!.AsArray());
        Assert.DoesNotContain(early["events"]!.AsArray(), e => e!["type"]!.GetValue<string>() == "anomaly.detected");
    }

    [Fact]
    public async Task Csv_IsRfc4180_WithFormulasDefused()
    {
        await AcknowledgeOnceAsync();
        using var res = await app.Http.GetAsync($"/api/pumps/{Serial}/complaint-file?format=csv", Ct);
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        Assert.Equal("text/csv", res.Content.Headers.ContentType?.MediaType);
        var rows = ParseCsv(await res.Content.ReadAsStringAsync(Ct));
        var header = rows[0];
        Assert.Equal("section", header[0]);
        Assert.All(rows, r => Assert.Equal(header.Count, r.Count));
        var events = rows.Count(r => r[0] == "event");
        Assert.Equal(await app.CountAsync($"SELECT count(*) FROM pf_events WHERE stream_id = '{Serial}'"), events);
        var text = header.IndexOf("text");
        var ack = Assert.Single(rows, r => r[0] == "acknowledgement");
        // Commas, quotes and the line break survive; the leading '=' is defused with an apostrophe.
        Assert.Equal("'" + Note, ack[text]);
        Assert.Single(rows, r => r[0] == "anomaly" && r[header.IndexOf("anomalyId")] == AnomalyId);
        Assert.Contains(rows, r => r[0] == "audit" && r[header.IndexOf("type")] == "anomaly.acknowledge");
        // An event's payload (JSON, full of quotes and commas) comes back intact.
        var detail = header.IndexOf("detail");
        Assert.All(rows.Where(r => r[0] == "event"), r => JsonNode.Parse(r[detail]));
    }

    [Fact]
    public async Task UnknownPump_Is404()
    {
        using var res = await app.Http.GetAsync("/api/pumps/NO-SUCH-PUMP/complaint-file", Ct);
        Assert.Equal(HttpStatusCode.NotFound, res.StatusCode);
    }

    // A strict RFC 4180 reader: quoted fields may hold commas, doubled quotes and line breaks.
    private static List<List<string>> ParseCsv(string s)
    {
        var rows = new List<List<string>>();
        var row = new List<string>();
        var field = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < s.Length && s[i + 1] == '"')
                {
                    field.Append('"');
                    i++;
                }
                else if (c == '"')
                {
                    quoted = false;
                }
                else
                {
                    field.Append(c);
                }
            }
            else if (c == '"')
            {
                Assert.Equal(0, field.Length);   // a quote only opens a field
                quoted = true;
            }
            else if (c == ',')
            {
                row.Add(field.ToString());
                field.Clear();
            }
            else if (c == '\r' && i + 1 < s.Length && s[i + 1] == '\n')
            {
                row.Add(field.ToString());
                field.Clear();
                rows.Add(row);
                row = [];
                i++;
            }
            else
            {
                Assert.NotEqual('\n', c);   // a bare line break outside quotes is malformed
                field.Append(c);
            }
        }

        Assert.False(quoted, "unterminated quoted field");
        Assert.Empty(row);
        return rows;
    }
}
