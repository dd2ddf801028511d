using PumpFleet.Simulator.Cli;
using PumpFleet.Simulator.Transport;

namespace PumpFleet.Simulator.Tests;

public sealed class CommandLineTests
{
    [Fact]
    public void Parse_ReadsTheDocumentedOptions()
    {
        var cmd = CommandLineParser.Parse([
            "--broker", "10.0.0.5:1884", "--pumps", "250", "--seed", "9", "--speed", "max", "--duration", "12h",
            "--start", "2026-11-24T03:00:00Z", "--fleet-secret", "s3", "--batch-interval", "15m", "--offline-rate", "0.2",
        ]);
        var o = cmd.Options;
        Assert.False(cmd.Help);
        Assert.Equal("10.0.0.5", o.BrokerHost);
        Assert.Equal(1884, o.BrokerPort);
        Assert.Equal(250, o.Pumps);
        Assert.Equal(9, o.Seed);
        Assert.Equal(0, o.Speed);
        Assert.Equal(TimeSpan.FromHours(12), o.Duration);
        Assert.Equal(new DateTimeOffset(2026, 11, 24, 3, 0, 0, TimeSpan.Zero), o.Start);
        Assert.Equal("s3", o.FleetSecret);
        Assert.Equal(TimeSpan.FromMinutes(15), o.BatchInterval);
        Assert.Equal(0.2, o.OfflineRatePerHubDay);
    }

    [Theory]
    [InlineData("--pumps", "zero")]
    [InlineData("--pumps", "0")]
    [InlineData("--duration", "soon")]
    [InlineData("--broker", "nohost")]
    [InlineData("--speed", "-1")]
    [InlineData("--faults", "/definitely/not/here.json")]
    [InlineData("--frobnicate", "1")]
    [InlineData("--pumps")]
    public void Parse_BadOptions_FailWithAMessage(params string[] args)
    {
        var e = Assert.Throws<FormatException>(() => CommandLineParser.Parse(args));
        Assert.False(string.IsNullOrWhiteSpace(e.Message));
    }

    [Fact]
    public async Task Run_BadOptions_ExitsWith2()
    {
        var error = new StringWriter();
        var original = Console.Error;
        Console.SetError(error);
        try
        {
            Assert.Equal(2, await CliProgram.RunAsync(["--pumps", "-3"]));
        }
        finally
        {
            Console.SetError(original);
        }

        Assert.Contains("pumps", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Help_ListsEveryOption()
    {
        Assert.True(CommandLineParser.Parse(["--help"]).Help);
        foreach (var option in new[] { "--broker", "--pumps", "--seed", "--speed", "--duration", "--faults", "--ground-truth", "--fleet-secret", "--output" })
        {
            Assert.Contains(option, CommandLineParser.HelpText, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("30d", 30 * 86400)]
    [InlineData("1.5h", 5400)]
    [InlineData("90m", 5400)]
    [InlineData("45s", 45)]
    [InlineData("500ms", 0.5)]
    [InlineData("01:00:00", 3600)]
    public void Span_ParsesUnits(string text, double seconds) =>
        Assert.Equal(TimeSpan.FromSeconds(seconds), CommandLineParser.Span("--x", text));

    [Fact]
    public void HubSecret_IsHexHmacSha256OfHubIdUnderFleetSecret()
    {
        // Reference value computed independently: hmac.new(b"dev", b"SIM-H00000", hashlib.sha256).hexdigest()
        Assert.Equal("24b06d64893b22ed84616f6d7a7d6d37aa77f4b050902c8309b4e4a5b3b543bc", new FleetSecretHubCredentials("dev").GetSecret("SIM-H00000"));
    }
}
