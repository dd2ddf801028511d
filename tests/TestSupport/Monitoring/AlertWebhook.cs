using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace PumpFleet.TestSupport.Monitoring;

/// <summary>
/// The receiving end of Alertmanager's <c>webhook_configs</c>: an HTTP listener on a free loopback port that keeps
/// every notification (the webhook JSON: receiver, status, alerts with labels and annotations).
/// </summary>
public sealed class AlertWebhook : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    /// <summary>Starts listening.</summary>
    public AlertWebhook()
    {
        // HttpListener cannot bind port 0, so a free port is picked first; the race with another process is harmless
        // in practice (the start fails loudly if it happens).
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            Port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
        _listener.Start();
        _loop = Task.Run(LoopAsync);
    }

    /// <summary>The loopback port.</summary>
    public int Port { get; }

    /// <summary>The URL for a receiver named <paramref name="receiver"/> (the path tells the receivers apart).</summary>
    public Uri UrlFor(string receiver) => new($"http://127.0.0.1:{Port}/{receiver}");

    /// <summary>Every notification received so far, with the receiver path it arrived on.</summary>
    public IReadOnlyList<(string Path, JsonElement Body)> Notifications => [.. _received];

    private readonly ConcurrentQueue<(string Path, JsonElement Body)> _received = new();

    private async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext ctx;
            try
            {
                ctx = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            try
            {
                using var doc = await JsonDocument.ParseAsync(ctx.Request.InputStream);
                _received.Enqueue((ctx.Request.Url!.AbsolutePath.Trim('/'), doc.RootElement.Clone()));
                ctx.Response.StatusCode = 200;
            }
            catch (JsonException)
            {
                ctx.Response.StatusCode = 400;
            }

            ctx.Response.Close();
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        _listener.Close();
        try
        {
            await _loop;
        }
        catch (ObjectDisposedException)
        {
        }

        _stop.Dispose();
    }
}
