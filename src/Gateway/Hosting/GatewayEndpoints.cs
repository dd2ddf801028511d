using Microsoft.AspNetCore.Builder;
using PumpFleet.ServiceDefaults;

namespace PumpFleet.Gateway.Hosting;

/// <summary>What the gateway process serves over HTTP.</summary>
public static class GatewayEndpoints
{
    /// <summary>
    /// Health and metrics only. The HTTP API that returns device data or changes hubs (quarantine, hub administration)
    /// is served by the Dashboard behind its sign-in (docs/security.md), so nothing here answers with device data.
    /// </summary>
    public static WebApplication MapPumpFleetGatewayEndpoints(this WebApplication app)
    {
        app.MapDefaultEndpoints();
        return app;
    }
}
