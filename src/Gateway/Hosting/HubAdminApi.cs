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
            var r = await admin.ProvisionAsync(body.HubId ?? "", body.Secret, Actor(http.User), Remote(http), ct, body.ClinicId);
            return r.Status switch
            {
                HubAdminStatus.Ok => Results.Created($"/api/hubs/{r.HubId}", new HubSecretResponse(r.HubId, r.Secret!)),
                HubAdminStatus.UnknownClinic => UnknownClinic(body.ClinicId),
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

        group.MapPut("{hubId}/clinic", async (HubAdmin admin, string hubId, HubClinicRequest? body, HttpContext http, CancellationToken ct) =>
        {
            var s = await admin.AssignClinicAsync(hubId, body?.ClinicId, Actor(http.User), Remote(http), ct);
            return s switch
            {
                HubAdminStatus.Ok => Results.Ok(new HubClinicResponse(hubId, body?.ClinicId)),
                HubAdminStatus.UnknownClinic => UnknownClinic(body?.ClinicId),
                _ => Problem(s, hubId),
            };
        }).WithName("SetHubClinic");

        return group;
    }

    /// <summary>
    /// Maps <c>POST /api/clinics</c> (register a clinic: id, name, optional IANA time zone); returns the group so the
    /// host can require its admin policy. Listing clinics is the dashboard's (any signed-in role).
    /// </summary>
    public static RouteGroupBuilder MapClinicAdminApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/clinics").WithTags("Clinics");
        group.MapPost("", async (HubAdmin admin, CreateClinicRequest? body, HttpContext http, CancellationToken ct) =>
        {
            if (HubAdmin.ClinicProblem(body?.Id, body?.Name, body?.Timezone) is { } bad)
            {
                await admin.CreateClinicAsync(body?.Id, body?.Name, body?.Timezone, Actor(http.User), Remote(http), ct);
                return Results.ValidationProblem(new Dictionary<string, string[]> { [bad.Field] = [bad.Reason] }, title: "Invalid clinic");
            }

            var s = await admin.CreateClinicAsync(body!.Id, body.Name, body.Timezone, Actor(http.User), Remote(http), ct);
            return s == HubAdminStatus.Ok
                ? Results.Created($"/api/clinics/{body.Id}", new ClinicResponse(body.Id!, body.Name!.Trim(), body.Timezone, []))
                : Results.Problem(statusCode: 409, title: "Clinic exists", detail: $"A clinic with id '{body.Id}' is already registered.");
        }).WithName("CreateClinic");
        return group;
    }

    private static IResult UnknownClinic(string? clinicId) => Results.ValidationProblem(
        new Dictionary<string, string[]> { ["clinicId"] = [$"no clinic '{clinicId}' is registered (POST /api/clinics first)."] }, title: "Unknown clinic");

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

/// <summary>Body of <c>POST /api/hubs</c>; the secret is generated when omitted; the clinic (registered before) is optional.</summary>
public sealed record ProvisionHubRequest(string? HubId, string? Secret, string? ClinicId = null);

/// <summary>Body of <c>PUT /api/hubs/{hubId}/clinic</c>: the clinic, or null for none.</summary>
public sealed record HubClinicRequest(string? ClinicId);

/// <summary>A hub's clinic after a change.</summary>
public sealed record HubClinicResponse(string HubId, string? ClinicId);

/// <summary>Body of <c>POST /api/clinics</c>.</summary>
/// <param name="Timezone">IANA time zone id (e.g. Europe/Berlin), optional.</param>
public sealed record CreateClinicRequest(string? Id, string? Name, string? Timezone);

/// <summary>A clinic and its hubs (<c>GET /api/clinics</c>, <c>POST /api/clinics</c>).</summary>
public sealed record ClinicResponse(string Id, string Name, string? Timezone, IReadOnlyList<string> HubIds);

/// <summary>Body of <c>POST /api/hubs/{hubId}/rotate</c>.</summary>
public sealed record RotateHubRequest(string? Secret);

/// <summary>The hub's secret, shown once.</summary>
public sealed record HubSecretResponse(string HubId, string Secret);
