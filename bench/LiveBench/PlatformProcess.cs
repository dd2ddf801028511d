using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace PumpFleet.LiveBench;

/// <summary>
/// The platform as its own process, as LoadBench runs it: the all-in-one silo (gateway with the embedded broker,
/// dashboard) in Development with the simulator off, so its CPU and memory are apart from the browsers and the load.
/// </summary>
internal sealed class PlatformProcess : IAsyncDisposable
{
    private readonly Process _process;

    private PlatformProcess(Process process) => _process = process;

    public int Pid => _process.Id;

    public static PlatformProcess Start(string siloDll, string connectionString, int mqttPort, int httpPort, IReadOnlyDictionary<string, string>? environment = null)
    {
        var psi = new ProcessStartInfo("dotnet", [siloDll])
        {
            WorkingDirectory = Path.GetDirectoryName(siloDll)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        psi.Environment["ASPNETCORE_ENVIRONMENT"] = "Development";
        psi.Environment["ConnectionStrings__PumpFleet"] = connectionString;
        psi.Environment["Urls"] = $"http://127.0.0.1:{httpPort}";
        psi.Environment["Gateway__Mqtt__Port"] = mqttPort.ToString(CultureInfo.InvariantCulture);
        psi.Environment["PumpFleet__Simulator__Enabled"] = "false";
        psi.Environment["PumpFleet__SiloPort"] = Ports.Free().ToString(CultureInfo.InvariantCulture);
        psi.Environment["PumpFleet__GatewayPort"] = Ports.Free().ToString(CultureInfo.InvariantCulture);
        psi.Environment["Logging__LogLevel__Default"] = "Warning";
        // The machine is shared: the platform's heap is capped (2 GiB) so a leak cannot starve the other processes.
        psi.Environment["DOTNET_GCHeapHardLimit"] = "0x80000000";
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            psi.Environment[name] = value;
        }

        var process = Process.Start(psi) ?? throw new InvalidOperationException("dotnet did not start");
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null && (e.Data.Contains("fail:", StringComparison.Ordinal) || e.Data.Contains("not acknowledged", StringComparison.Ordinal)))
            {
                Console.Error.WriteLine("platform: " + e.Data);
            }
        };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine("platform: " + e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new PlatformProcess(process);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }
}

/// <summary>Free loopback ports and waiting for an HTTP endpoint.</summary>
internal static class Ports
{
    public static int Free()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    public static async Task WaitForAsync(string url, TimeSpan timeout)
    {
        using var http = new HttpClient();
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < timeout)
        {
            try
            {
                if ((await http.GetAsync(url)).IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            await Task.Delay(250);
        }

        throw new TimeoutException($"{url} not ready after {timeout}.");
    }
}
