using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using PumpFleet.Gateway.Hubs;

namespace PumpFleet.Gateway.Hosting;

/// <summary>HTTP endpoints for hub provisioning and pump pairing (docs/gateway.md).</summary>
public static class HubAdminApi
{
    /// <summary>Header carrying <see cref="HubAuthOptions.AdminApiKey"/>.</summary>
    public const string ApiKeyHeader = "X-Api-Key";

    /// <summary>
    /// Maps <c>POST /api/hubs</c>, <c>POST /api/hubs/{hubId}/rotate</c>, <c>DELETE /api/hubs/{hubId}</c> and
    /// <c>POST /api/hubs/{hubId}/pumps/{serial}</c>. Outside Development every call needs the admin key header.
    /// </summary>
    public static RouteGroupBuilder MapHubAdminApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/hubs").WithTags("Hubs").AddEndpointFilter(RequireAdminKeyAsync);

        group.MapPost("", async (HubAdmin admin, ProvisionHubRequest body, CancellationToken ct) =>
        {
            var r = await admin.ProvisionAsync(body.HubId ?? "", body.Secret, body.By ?? "http", ct);
            return r.Status switch
            {
                HubAdminStatus.Ok => Results.Created($"/api/hubs/{r.HubId}", new HubSecretResponse(r.HubId, r.Secret!)),
                HubAdminStatus.Exists => Results.Problem(statusCode: 409, title: "Hub exists", detail: $"Hub '{r.HubId}' is already provisioned; rotate its secret instead."),
                _ => Problem(r.Status, r.HubId),
            };
        }).WithName("ProvisionHub");

        group.MapPost("{hubId}/rotate", async (HubAdmin admin, string hubId, RotateHubRequest? body, CancellationToken ct) =>
        {
            var r = await admin.RotateAsync(hubId, body?.Secret, ct);
            return r.Status == HubAdminStatus.Ok ? Results.Ok(new HubSecretResponse(r.HubId, r.Secret!)) : Problem(r.Status, hubId);
        }).WithName("RotateHubSecret");

        group.MapDelete("{hubId}", async (HubAdmin admin, string hubId, CancellationToken ct) =>
        {
            var s = await admin.RevokeAsync(hubId, ct);
            return s == HubAdminStatus.Ok ? Results.NoContent() : Problem(s, hubId);
        }).WithName("RevokeHub");

        group.MapPost("{hubId}/pumps/{serial}", async (HubAdmin admin, string hubId, string serial, CancellationToken ct) =>
        {
            var s = await admin.PairAsync(hubId, serial, "http", ct);
            return s == HubAdminStatus.Ok ? Results.NoContent() : Problem(s, hubId);
        }).WithName("PairPump");

        return group;
    }

    private static IResult Problem(HubAdminStatus status, string hubId) => status switch
    {
        HubAdminStatus.InvalidId => Results.Problem(statusCode: 400, title: "Invalid id",
            detail: "Hub ids and serials must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$."),
        HubAdminStatus.WeakSecret => Results.Problem(statusCode: 400, title: "Secret too short",
            detail: $"A supplied secret must be at least {HubAdmin.MinSecretLength} characters; omit it to get a generated one."),
        HubAdminStatus.NotFound => Results.Problem(statusCode: 404, title: "Unknown hub", detail: $"Hub '{hubId}' is not provisioned (or is revoked)."),
        _ => Results.Problem(statusCode: 500),
    };

    private static async ValueTask<object?> RequireAdminKeyAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var services = context.HttpContext.RequestServices;
        var key = services.GetRequiredService<IOptions<HubAuthOptions>>().Value.AdminApiKey;
        if (string.IsNullOrEmpty(key))
        {
            // Without a key only a developer's own machine may provision hubs.
            return services.GetRequiredService<IHostEnvironment>().IsDevelopment()
                ? await next(context)
                : Results.Problem(statusCode: 403, title: "Hub administration disabled",
                    detail: "Set Gateway:Hubs:AdminApiKey and send it in the X-Api-Key header.");
        }

        var given = context.HttpContext.Request.Headers[ApiKeyHeader].ToString();
        return CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(given), Encoding.UTF8.GetBytes(key))
            ? await next(context)
            : Results.Problem(statusCode: 401, title: "Admin key required", detail: "Send the admin key in the X-Api-Key header.");
    }
}

/// <summary>Body of <c>POST /api/hubs</c>; the secret is generated when omitted.</summary>
public sealed record ProvisionHubRequest(string? HubId, string? Secret, string? By);

/// <summary>Body of <c>POST /api/hubs/{hubId}/rotate</c>.</summary>
public sealed record RotateHubRequest(string? Secret);

/// <summary>The hub's secret, shown once.</summary>
public sealed record HubSecretResponse(string HubId, string Secret);
