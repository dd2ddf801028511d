using System.Diagnostics;
using System.Net.Sockets;
using PumpFleet.TestSupport;

namespace PumpFleet.Gateway.Tests.Infrastructure;

/// <summary>
/// A private mosquitto 2 broker on a free loopback port, configured in a temporary folder. The test script installs
/// mosquitto from apt; without it the tests fail with a message saying so (they are never skipped).
/// </summary>
public sealed class MosquittoServer : IAsyncDisposable
{
    public const string Binary = "/usr/sbin/mosquitto";

    private readonly Process _process;
    private readonly string _directory;

    private MosquittoServer(Process process, string directory, int port)
    {
        _process = process;
        _directory = directory;
        Port = port;
    }

    public int Port { get; }

    /// <summary>The broker's log lines so far (errors, warnings, notices), for assertion messages.</summary>
    public IReadOnlyList<string> Log
    {
        get
        {
            lock (_log)
            {
                return [.. _log];
            }
        }
    }

    private readonly List<string> _log = [];

    /// <summary>
    /// Starts mosquitto. With <paramref name="passwordFile"/> and <paramref name="aclFile"/> anonymous access is off
    /// and those files (as <c>hubs mosquitto-files</c> writes them) decide who may connect and what they may touch.
    /// </summary>
    public static async Task<MosquittoServer> StartAsync(string? passwordFile = null, string? aclFile = null)
    {
        if (!File.Exists(Binary))
        {
            throw new InvalidOperationException(
                $"{Binary} is missing: install it with 'apt-get install -y mosquitto mosquitto-clients' (the test script does this).");
        }

        var dir = Directory.CreateTempSubdirectory("pumpfleet-mosquitto-").FullName;
        var port = Ports.Free();
        var config = Path.Combine(dir, "mosquitto.conf");
        // `user`: started as root (CI containers), mosquitto would switch to the user "mosquitto", which cannot read
        // the password file in this private temporary folder; as anyone else the option is ignored.
        await File.WriteAllTextAsync(config, $"""
            listener {port} 127.0.0.1
            {(passwordFile is null ? "allow_anonymous true" : $"allow_anonymous false\npassword_file {passwordFile}")}
            {(aclFile is null ? "" : $"acl_file {aclFile}")}
            persistence false
            user {Environment.UserName}
            log_dest stderr
            log_type error
            log_type warning
            log_type notice
            log_type information
            max_queued_messages 10000
            """);
        var psi = new ProcessStartInfo(Binary, ["-c", config])
        {
            RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false,
        };
        var process = Process.Start(psi) ?? throw new InvalidOperationException("mosquitto did not start.");
        var server = new MosquittoServer(process, dir, port);
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (server._log)
                {
                    server._log.Add(e.Data);
                }
            }
        };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        await Eventually.TrueAsync(async () =>
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"mosquitto exited with code {process.ExitCode}: {string.Join(" | ", server.Log)}");
            }

            using var tcp = new TcpClient();
            await tcp.ConnectAsync("127.0.0.1", port);
            return true;
        }, TimeSpan.FromSeconds(15), $"mosquitto listening on port {port}");
        return server;
    }

    /// <summary>Sends SIGHUP: mosquitto reloads its configuration, password file and ACL.</summary>
    public async Task ReloadAsync()
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", ["-HUP", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]) { UseShellExecute = false })!;
        await kill.WaitForExitAsync(TestContext.Current.CancellationToken);
        Assert.Equal(0, kill.ExitCode);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync(CancellationToken.None);
        }

        _process.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
