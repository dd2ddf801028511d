using System.Globalization;
using Npgsql;
using PumpFleet.EventStore.Audit;

namespace PumpFleet.EventStore.Integrity;

/// <summary>
/// The body of the silo's <c>verify [streamId] [--actor=&lt;name&gt;]</c>: walks the chains and the anchors, records the
/// check in the audit trail (<c>chain.verify</c>), then prints the report. Verify reads every event of the log (or of
/// one pump) and its report names device serials, so it is audited like any other read of patient-level data: the
/// entry is written before the report is shown, and when it cannot be written nothing is shown (docs/security.md).
/// </summary>
public static class VerifyCommandLine
{
    /// <summary>Returns the exit code: 0 when everything holds, 1 when a link is broken.</summary>
    public static async Task<int> RunAsync(NpgsqlDataSource dataSource, string? streamId, OperatorIdentity who, TextWriter output, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(who);
        ArgumentNullException.ThrowIfNull(output);
        var report = await new ChainVerifier(dataSource).VerifyAsync(streamId, ct);
        static string N(long n) => n.ToString(CultureInfo.InvariantCulture);
        var detail = who.Detail(("streams", N(report.Streams)), ("events", N(report.Events)), ("anchors", N(report.Anchors)), ("breaks", N(report.Breaks.Count)));
        await new AuditLog(dataSource).WriteAsync(new AuditEntry(who.Actor, "chain.verify", streamId ?? "*", report.Intact ? 0 : 1, null, detail), ct);
        ChainVerifier.Write(report, output);
        return report.Intact ? 0 : 1;
    }
}
