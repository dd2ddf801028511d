using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using PumpFleet.Simulator.Faults;
using PumpFleet.Simulator.Generation;
using PumpFleet.Simulator.Transport;
using PumpFleet.Simulator.Wire;

namespace PumpFleet.Simulator.Cli;

/// <summary>The command-line entry point.</summary>
internal static class CliProgram
{
    public static async Task<int> RunAsync(string[] args)
    {
        CommandLine cmd;
        try
        {
            cmd = CommandLineParser.Parse(args);
        }
        catch (FormatException e)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}{Environment.NewLine}Run with --help for the options.");
            return 2;
        }

        if (cmd.Help)
        {
            Console.WriteLine(CommandLineParser.HelpText);
            return 0;
        }

        FaultScenario? scenario;
        try
        {
            scenario = cmd.Options.FaultsFile is null ? null : FaultScenario.Load(cmd.Options.FaultsFile);
            if (scenario is not null)
            {
                // Resolves serials and hub ids, so a scenario naming a pump outside the fleet fails here, not mid-run.
                _ = new FleetGenerator(cmd.Options, scenario);
            }
        }
        catch (FormatException e)
        {
            await Console.Error.WriteLineAsync($"error: {cmd.Options.FaultsFile}: {e.Message}");
            return 2;
        }

        using var cts = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cts.Cancel();
        };

        if (cmd.Output is not null)
        {
            return await GenerateOnlyAsync(cmd, scenario, cts.Token);
        }

        using var loggers = LoggerFactory.Create(b => b
            .SetMinimumLevel(cmd.LogLevel)
            .AddSimpleConsole(c =>
            {
                c.SingleLine = true;
                c.TimestampFormat = "HH:mm:ss ";
            }));
        try
        {
            var result = await new FleetSimulator(loggers).RunAsync(cmd.Options, cts.Token);
            return result.Unacked == 0 ? 0 : 1;
        }
        catch (OperationCanceledException)
        {
            await Console.Error.WriteLineAsync("cancelled");
            return 1;
        }
        catch (InvalidOperationException e)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}");
            return 1;
        }
    }

    /// <summary>Writes the batches (and the ground truth) without any broker: for benchmarks and offline scoring.</summary>
    private static async Task<int> GenerateOnlyAsync(CommandLine cmd, FaultScenario? scenario, CancellationToken cancellationToken)
    {
        var generator = new FleetGenerator(cmd.Options, scenario);
        using var groundTruth = cmd.Options.GroundTruthFile is null ? null : GroundTruthWriter.Create(cmd.Options.GroundTruthFile);
        var stream = cmd.Output == "-" ? Console.OpenStandardOutput() : File.Create(cmd.Output!);
        await using var writer = new StreamWriter(stream, new UTF8Encoding(false));
        long batches = 0, events = 0;
        foreach (var item in generator.Generate())
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (item is FaultInjected f)
            {
                groundTruth?.Write(f.Record);
            }
            else if (item is PumpBatch b)
            {
                batches++;
                events += b.Events.Count;
                await writer.WriteLineAsync(OutputLine(b));
            }
        }

        await Console.Error.WriteLineAsync($"generated {events} events in {batches} batches for {generator.Plan.Pumps.Count} pumps on {generator.Plan.Hubs.Count} hubs");
        return 0;
    }

    /// <summary>One NDJSON line: where and when the batch was sent, with the payload embedded as JSON.</summary>
    private static string OutputLine(PumpBatch b)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(1024);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("at", WireJson.FormatTime(b.At));
            w.WriteString("hubId", b.HubId);
            w.WriteString("serial", b.Serial);
            w.WriteString("topic", b.Topic);
            w.WritePropertyName("payload");
            w.WriteRawValue(b.ToJson(), skipInputValidation: true);
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
