using PumpFleet.Clustering;
using PumpFleet.Gateway.Cli;
using PumpFleet.Gateway.Hosting;
using PumpFleet.ServiceDefaults;

// `hubs ...` administers hubs and exits; anything else runs the gateway. Configuration switches of the form
// --Key=Value (e.g. --ConnectionStrings:PumpFleet=...) may be mixed in; they go to the host's configuration.
if (args is ["hubs", .. var rest])
{
    static bool IsSetting(string a) => a.StartsWith("--", StringComparison.Ordinal) && a.Contains('=', StringComparison.Ordinal);
    return await HubsCli.RunAsync([.. rest.Where(a => !IsSetting(a))], [.. rest.Where(IsSetting)], Console.Out, Console.Error);
}

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.AddPumpFleetOrleansClient();
builder.Services.AddPumpFleetGateway(builder.Configuration);
var app = builder.Build();
app.MapPumpFleetGatewayEndpoints();
await app.RunAsync();
return 0;
