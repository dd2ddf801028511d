using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace PumpFleet.Gateway.Quarantine;

/// <summary><c>GET /api/quarantine</c> (protocol.md §2), mountable by any host that registered the gateway services.</summary>
public static class QuarantineApi
{
    /// <summary>Largest page.</summary>
    public const int MaxLimit = 1000;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// Registers only what <see cref="MapQuarantineApi"/> needs, for hosts that serve the quarantine without running
    /// the gateway (the Dashboard). Needs the <c>NpgsqlDataSource</c> of <c>AddPumpFleetEventStore</c> and the
    /// gateway's migration (<c>AddPumpFleetMigrations(typeof(QuarantineStore).Assembly)</c>) somewhere in the deployment.
    /// </summary>
    public static IServiceCollection AddPumpFleetQuarantineApi(this IServiceCollection services)
    {
        services.TryAddSingleton<QuarantineStore>();
        return services;
    }

    /// <summary>Maps <c>GET /api/quarantine?hubId=&amp;serial=&amp;limit=&amp;beforeId=</c>; returns the group for auth and OpenAPI.</summary>
    public static RouteGroupBuilder MapQuarantineApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/quarantine").WithTags("Quarantine");
        group.MapGet("", async (QuarantineStore store, string? hubId, string? serial, int? limit, long? beforeId, CancellationToken ct) =>
        {
            var take = limit ?? 100;
            if (take < 1 || take > MaxLimit)
            {
                return Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid limit",
                    detail: $"limit is {take}; expected 1 to {MaxLimit}.");
            }

            var rows = await store.QueryAsync(Blank(hubId), Blank(serial), take, beforeId, ct);
            return Results.Ok(rows.Select(ToDto).ToList());
        }).WithName("GetQuarantine").WithSummary("Quarantined messages and events, newest first");
        return group;
    }

    private static string? Blank(string? s) => string.IsNullOrWhiteSpace(s) ? null : s;

    private static QuarantineDto ToDto(QuarantineEntry e)
    {
        string? text = null;
        string? base64 = null;
        try
        {
            text = StrictUtf8.GetString(e.Payload);
        }
        catch (DecoderFallbackException)
        {
            // Not text at all: served as base64 so the bytes survive JSON.
            base64 = Convert.ToBase64String(e.Payload);
        }

        return new QuarantineDto(e.Id, e.HubId, e.Serial, e.Topic, e.Scope, e.Refused, e.Seq, e.Code, e.Reason, e.ReceivedAt, text, base64);
    }
}

/// <summary>One quarantined item on the wire. <c>payload</c> is the raw text; <c>payloadBase64</c> when it is not UTF-8.</summary>
public sealed record QuarantineDto(
    long Id, string HubId, string? Serial, string Topic, string Scope, bool Refused, long? Seq, string Code, string Reason,
    DateTimeOffset ReceivedAt, string? Payload, string? PayloadBase64);
