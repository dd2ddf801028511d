return await PumpFleet.Simulator.Cli.CliProgram.RunAsync(args);
