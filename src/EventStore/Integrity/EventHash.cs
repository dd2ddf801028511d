using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace PumpFleet.EventStore.Integrity;

/// <summary>
/// The event hash chain of Sql/003_event_hash_chain.sql, recomputed in .NET so that verification does not trust the
/// database's own function: sha256(previous hash || utf8 of the fields joined by line feeds).
/// </summary>
public static class EventHash
{
    /// <summary>The "previous hash" of a stream's first event.</summary>
    public static ReadOnlySpan<byte> Genesis => new byte[32];

    /// <summary>Computes the hash of one event given the previous event's hash (<see cref="Genesis"/> for version 1).</summary>
    public static byte[] Compute(
        ReadOnlySpan<byte> previous, string streamId, long version, Guid eventId, string type, long? seq,
        DateTimeOffset? deviceTime, DateTimeOffset receivedAt, bool clockSuspect, string data, string? metadata)
    {
        var text = string.Join('\n',
            streamId,
            version.ToString(CultureInfo.InvariantCulture),
            eventId.ToString("D"),
            type,
            seq?.ToString(CultureInfo.InvariantCulture) ?? "",
            deviceTime is { } d ? Micros(d).ToString(CultureInfo.InvariantCulture) : "",
            Micros(receivedAt).ToString(CultureInfo.InvariantCulture),
            clockSuspect ? "t" : "f",
            data,
            metadata ?? "");
        var body = Encoding.UTF8.GetBytes(text);
        var input = new byte[previous.Length + body.Length];
        previous.CopyTo(input);
        body.CopyTo(input.AsSpan(previous.Length));
        return SHA256.HashData(input);
    }

    // PostgreSQL keeps microseconds; extract(epoch ...) * 1e6 is exact.
    private static long Micros(DateTimeOffset t) => (t.UtcTicks - DateTime.UnixEpoch.Ticks) / 10;
}
