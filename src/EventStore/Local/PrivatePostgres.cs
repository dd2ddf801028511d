using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace PumpFleet.EventStore.Local;

/// <summary>
/// A private PostgreSQL server started from the system's binaries in a data folder, on a free loopback port.
/// Used by the README's run command (when no connection string is configured) and by the tests. PostgreSQL refuses
/// to run as root, so as root the server runs as the <c>postgres</c> user.
/// </summary>
public sealed class PrivatePostgres : IAsyncDisposable
{
    private readonly string _binDir;
    private readonly bool _ownsDirectory;
    private bool _stopped;

    private PrivatePostgres(string dataDirectory, string binDir, int port, bool ownsDirectory)
    {
        DataDirectory = dataDirectory;
        _binDir = binDir;
        Port = port;
        _ownsDirectory = ownsDirectory;
    }

    /// <summary>The cluster's data folder.</summary>
    public string DataDirectory { get; }

    /// <summary>The loopback port it listens on.</summary>
    public int Port { get; }

    /// <summary>Connection string for a database on this server (user <c>postgres</c>, trust auth on loopback).</summary>
    public string ConnectionString(string database = "postgres") =>
        $"Host=127.0.0.1;Port={Port};Username=postgres;Database={database};Maximum Pool Size=50;Timeout=15;Command Timeout=60";

    /// <summary>
    /// Starts (creating it first if needed) a server in <paramref name="dataDirectory"/>, or in a new temporary folder
    /// that is deleted on dispose when null. A server already running in that folder is reused.
    /// </summary>
    /// <param name="statementStatistics">Benchmarks: preload <c>pg_stat_statements</c> (nested statements too, so the
    /// statements inside functions and triggers are counted apart) and count function calls and their own time
    /// (<c>track_functions</c>), to say where PostgreSQL's time per appended event goes.</param>
    /// <param name="settings">Benchmarks: more server settings (<c>name=value</c>, e.g. <c>shared_buffers=4GB</c> for a
    /// million-pump fleet), after the defaults, so they win.</param>
    public static async Task<PrivatePostgres> StartAsync(
        string? dataDirectory = null, bool durable = true, Action<string>? progress = null, CancellationToken ct = default, bool statementStatistics = false,
        IReadOnlyList<string>? settings = null)
    {
        foreach (var setting in settings ?? [])
        {
            // Passed to pg_ctl's -o as one word each: no spaces, a name and a value.
            if (setting.Split('=') is not [{ Length: > 0 } name, { Length: > 0 }] || setting.Any(char.IsWhiteSpace) || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.'))
            {
                throw new ArgumentException($"A PostgreSQL setting is name=value without spaces, not '{setting}'.", nameof(settings));
            }
        }

        var binDir = FindBinDirectory();
        var owns = dataDirectory is null;
        var dir = Path.GetFullPath(dataDirectory ?? Path.Combine(Path.GetTempPath(), "pumpfleet-pg-" + Guid.NewGuid().ToString("N")[..12]));
        Directory.CreateDirectory(dir);
        var asRoot = Environment.UserName == "root" || Environment.GetEnvironmentVariable("USER") == "root";
        if (asRoot)
        {
            await RunAsync("chown", ["-R", "postgres:postgres", dir], asPostgres: false, ct);
        }

        if (!File.Exists(Path.Combine(dir, "PG_VERSION")))
        {
            progress?.Invoke($"Creating a PostgreSQL cluster in {dir}");
            await RunAsync(Path.Combine(binDir, "initdb"),
                ["-D", dir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--locale=C"], asRoot, ct);
        }

        var pidFile = Path.Combine(dir, "postmaster.pid");
        if (File.Exists(pidFile) && await IsRunningAsync(binDir, dir, asRoot, ct))
        {
            var lines = await File.ReadAllLinesAsync(pidFile, ct);
            var existingPort = int.Parse(lines[3], CultureInfo.InvariantCulture);
            progress?.Invoke($"Reusing the PostgreSQL server already running on port {existingPort}");
            return new PrivatePostgres(dir, binDir, existingPort, owns);
        }

        var port = FreePort();
        var options = string.Join(' ',
            $"-p {port}", "-c listen_addresses=127.0.0.1", $"-c unix_socket_directories={dir}",
            "-c max_connections=300", "-c shared_buffers=256MB",
            // Test clusters trade durability for speed; the run command keeps fsync on.
            durable ? "" : "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            statementStatistics ? "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all -c track_functions=all" : "",
            string.Join(' ', (settings ?? []).Select(x => "-c " + x)));
        progress?.Invoke($"Starting PostgreSQL on 127.0.0.1:{port}");
        await RunAsync(Path.Combine(binDir, "pg_ctl"),
            ["-D", dir, "-l", Path.Combine(dir, "server.log"), "-o", options, "-w", "-t", "60", "start"], asRoot, ct);
        return new PrivatePostgres(dir, binDir, port, owns);
    }

    /// <summary>Stops the server (fast shutdown).</summary>
    public async Task StopAsync()
    {
        if (_stopped)
        {
            return;
        }

        _stopped = true;
        var asRoot = Environment.UserName == "root";
        await RunAsync(Path.Combine(_binDir, "pg_ctl"), ["-D", DataDirectory, "-m", "fast", "-w", "stop"], asRoot, CancellationToken.None);
    }

    /// <summary>Starts the server again after <see cref="StopAsync"/> on the same port (for outage tests).</summary>
    public async Task RestartAsync()
    {
        var asRoot = Environment.UserName == "root";
        var options = $"-p {Port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={DataDirectory} -c max_connections=300 -c fsync=off";
        await RunAsync(Path.Combine(_binDir, "pg_ctl"),
            ["-D", DataDirectory, "-l", Path.Combine(DataDirectory, "server.log"), "-o", options, "-w", "-t", "60", "start"], asRoot, CancellationToken.None);
        _stopped = false;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (!_ownsDirectory)
        {
            return;
        }

        try
        {
            await StopAsync();
        }
        finally
        {
            try
            {
                Directory.Delete(DataDirectory, recursive: true);
            }
            catch (IOException)
            {
                // A leftover temp folder is harmless; the server is already stopped.
            }
        }
    }

    /// <summary>Finds the PostgreSQL server binaries: <c>PG_BIN</c>, else the newest <c>/usr/lib/postgresql/N/bin</c>.</summary>
    public static string FindBinDirectory()
    {
        var env = Environment.GetEnvironmentVariable("PG_BIN");
        if (!string.IsNullOrEmpty(env) && File.Exists(Path.Combine(env, "pg_ctl")))
        {
            return env;
        }

        const string root = "/usr/lib/postgresql";
        var candidates = Directory.Exists(root)
            ? Directory.GetDirectories(root)
                .Select(d => (Dir: Path.Combine(d, "bin"), Version: int.TryParse(Path.GetFileName(d), out var v) ? v : 0))
                .Where(x => File.Exists(Path.Combine(x.Dir, "pg_ctl")))
                .OrderByDescending(x => x.Version)
                .Select(x => x.Dir)
                .ToList()
            : [];
        return candidates.FirstOrDefault() ?? throw new InvalidOperationException(
            "PostgreSQL server binaries not found (looked in PG_BIN and /usr/lib/postgresql/*/bin). " +
            "Install them (Debian: apt-get install postgresql) or configure ConnectionStrings:PumpFleet.");
    }

    private static async Task<bool> IsRunningAsync(string binDir, string dir, bool asRoot, CancellationToken ct)
    {
        var (code, _) = await TryRunAsync(Path.Combine(binDir, "pg_ctl"), ["-D", dir, "status"], asRoot, ct);
        return code == 0;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task RunAsync(string file, string[] args, bool asPostgres, CancellationToken ct)
    {
        var (code, output) = await TryRunAsync(file, args, asPostgres, ct);
        if (code != 0)
        {
            throw new InvalidOperationException($"'{Path.GetFileName(file)} {string.Join(' ', args)}' failed with exit code {code}: {output}");
        }
    }

    private static async Task<(int Code, string Output)> TryRunAsync(string file, string[] args, bool asPostgres, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(asPostgres ? "runuser" : file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = "/",
        };
        if (asPostgres)
        {
            foreach (var a in new[] { "-u", "postgres", "--", file })
            {
                psi.ArgumentList.Add(a);
            }
        }

        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"Could not start {file}.");
        // pg_ctl start leaves the postmaster holding inherited pipes; read to end only for short-lived commands.
        var stdout = p.StandardOutput.ReadToEndAsync(ct);
        var stderr = p.StandardError.ReadToEndAsync(ct);
        await p.WaitForExitAsync(ct);
        var text = await Task.WhenAny(Task.WhenAll(stdout, stderr), Task.Delay(TimeSpan.FromSeconds(2), ct)) is var t && stdout.IsCompleted && stderr.IsCompleted
            ? (await stdout) + (await stderr)
            : "";
        return (p.ExitCode, text.Trim());
    }
}
