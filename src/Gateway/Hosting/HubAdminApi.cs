using System.Security.Claims;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using PumpFleet.EventStore.Audit;
using PumpFleet.Gateway.Hubs;

namespace PumpFleet.Gateway.Hosting;

/// <summary>
/// HTTP endpoints for hub provisioning and pump pairing (docs/gateway.md). They carry no authentication of their own:
/// the host that maps them puts them behind its sign-in with the admin role (the Dashboard does, see
/// <c>MapPumpFleetDashboard</c>), and the signed-in user or named API key is the actor of the audit trail.
/// </summary>
public static class HubAdminApi
{
    /// <summary>
    /// Maps <c>POST /api/hubs</c>, <c>POST /api/hubs/{hubId}/rotate</c>, <c>DELETE /api/hubs/{hubId}</c> and
    /// <c>POST /api/hubs/{hubId}/pumps/{serial}</c>; returns the group so the host can require its admin policy.
    /// </summary>
    public static RouteGroupBuilder MapHubAdminApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/hubs").WithTags("Hubs");

        group.MapPost("", async (HubAdmin admin, ProvisionHubRequest body, HttpContext http, CancellationToken ct) =>
        {
            var r = await admin.ProvisionAsync(body.HubId ?? "", body.Secret, Actor(http.User), Remote(http), ct);
            return r.Status switch
            {
                HubAdminStatus.Ok => Results.Created($"/api/hubs/{r.HubId}", new HubSecretResponse(r.HubId, r.Secret!)),
                HubAdminStatus.Exists => Results.Problem(statusCode: 409, title: "Hub exists", detail: $"Hub '{r.HubId}' is already provisioned; rotate its secret instead."),
                _ => Problem(r.Status, r.HubId),
            };
        }).WithName("ProvisionHub");

        group.MapPost("{hubId}/rotate", async (HubAdmin admin, string hubId, RotateHubRequest? body, HttpContext http, CancellationToken ct) =>
        {
            var r = await admin.RotateAsync(hubId, body?.Secret, Actor(http.User), Remote(http), ct);
            return r.Status == HubAdminStatus.Ok ? Results.Ok(new HubSecretResponse(r.HubId, r.Secret!)) : Problem(r.Status, hubId);
        }).WithName("RotateHubSecret");

        group.MapDelete("{hubId}", async (HubAdmin admin, string hubId, HttpContext http, CancellationToken ct) =>
        {
            var s = await admin.RevokeAsync(hubId, Actor(http.User), Remote(http), ct);
            return s == HubAdminStatus.Ok ? Results.NoContent() : Problem(s, hubId);
        }).WithName("RevokeHub");

        group.MapPost("{hubId}/pumps/{serial}", async (HubAdmin admin, string hubId, string serial, HttpContext http, CancellationToken ct) =>
        {
            var s = await admin.PairAsync(hubId, serial, Actor(http.User), Remote(http), ct);
            return s == HubAdminStatus.Ok ? Results.NoContent() : Problem(s, hubId);
        }).WithName("PairPump");

        return group;
    }

    /// <summary>
    /// The audit actor of a request: a named API key is a machine (its principal's name starts with <c>api:</c>),
    /// anyone else signed in is a user. Unauthenticated requests never get here outside Development.
    /// </summary>
    public static AuditActor Actor(ClaimsPrincipal user)
    {
        ArgumentNullException.ThrowIfNull(user);
        var name = user.Identity?.IsAuthenticated == true ? user.Identity.Name ?? "unnamed" : "anonymous";
        var role = user.FindAll(ClaimTypes.Role).Select(c => c.Value).LastOrDefault();
        return new AuditActor(name.StartsWith("api:", StringComparison.Ordinal) ? "machine" : "user", name, role);
    }

    /// <summary>Where a request came from, for the audit trail (the forwarded-headers middleware, if any, has run).</summary>
    public static string? Remote(HttpContext http) => http?.Connection.RemoteIpAddress?.ToString();

    private static IResult Problem(HubAdminStatus status, string hubId) => status switch
    {
        HubAdminStatus.InvalidId => Results.Problem(statusCode: 400, title: "Invalid id",
            detail: "Hub ids and serials must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$."),
        HubAdminStatus.WeakSecret => Results.Problem(statusCode: 400, title: "Secret too short",
            detail: $"A supplied secret must be at least {HubAdmin.MinSecretLength} characters; omit it to get a generated one."),
        HubAdminStatus.NotFound => Results.Problem(statusCode: 404, title: "Unknown hub", detail: $"Hub '{hubId}' is not provisioned (or is revoked)."),
        HubAdminStatus.Revoked => Results.Problem(statusCode: 409, title: "Hub revoked",
            detail: $"Hub '{hubId}' is revoked; a revocation is final. Provision the device under a new hub id."),
        _ => Results.Problem(statusCode: 500),
    };
}

/// <summary>Body of <c>POST /api/hubs</c>; the secret is generated when omitted.</summary>
public sealed record ProvisionHubRequest(string? HubId, string? Secret);

/// <summary>Body of <c>POST /api/hubs/{hubId}/rotate</c>.</summary>
public sealed record RotateHubRequest(string? Secret);

/// <summary>The hub's secret, shown once.</summary>
public sealed record HubSecretResponse(string HubId, string Secret);
