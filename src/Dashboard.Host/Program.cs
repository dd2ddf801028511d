using Orleans.Dashboard;
using PumpFleet.Clustering;
using PumpFleet.Dashboard.Auth;
using PumpFleet.Dashboard.Hosting;
using PumpFleet.Projections;
using PumpFleet.ServiceDefaults;
using PumpFleet.Streaming;

// `hash-password <password>` prints a hash for Dashboard:Auth:Users:<name>:PasswordHash.
if (args is ["hash-password", var password])
{
    Console.WriteLine(PasswordHasher.Hash(password));
    return 0;
}

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.AddPumpFleetOrleansClient(client => client.AddDashboard().AddPumpFleetLogStreams());
builder.AddPumpFleetDashboard();
var app = builder.Build();
if (ProjectionsCommandLine.Matches(args))
{
    return await ProjectionsCommandLine.RunAsync(args, app.Services, Console.Out);
}

app.MapDefaultEndpoints();
app.MapPumpFleetDashboard();
await app.RunAsync();
return 0;
