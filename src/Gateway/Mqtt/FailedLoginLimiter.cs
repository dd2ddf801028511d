using PumpFleet.Gateway.Ingest;
using PumpFleet.Gateway.Quarantine;

namespace PumpFleet.Gateway.Mqtt;

/// <summary>
/// Writes refused connections to the quarantine so operators see them, but at most <see cref="PerMinute"/> rows a
/// minute: anyone can open connections, and a flood must not fill the database. All refusals are counted.
/// </summary>
internal sealed class FailedLoginLimiter(QuarantineStore store, GatewayInstruments instruments, TimeProvider time)
{
    public const int PerMinute = 60;
    private readonly Lock _lock = new();
    private long _minute;
    private int _written;

    public async Task RecordAsync(string clientId, string code, string reason, CancellationToken ct)
    {
        instruments.OnMessage(MessageResults.Refused, 0, TimeSpan.Zero);
        var now = time.GetUtcNow();
        lock (_lock)
        {
            var minute = now.ToUnixTimeSeconds() / 60;
            if (minute != _minute)
            {
                _minute = minute;
                _written = 0;
            }

            if (++_written > PerMinute)
            {
                return;
            }
        }

        try
        {
            await store.AddAsync([new QuarantineItem(clientId.Length > 200 ? clientId[..200] : clientId, null, "", true, true, null, code, reason, now, Array.Empty<byte>())], ct);
            instruments.OnQuarantined(code);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Best effort: the refusal itself does not depend on the database.
            instruments.OnDependencyFailure(Dependencies.PostgreSql);
        }
    }
}
