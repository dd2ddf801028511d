using PumpFleet.Gateway.Hosting;
using PumpFleet.Gateway.Hubs;

namespace PumpFleet.Dashboard.Api;

/// <summary>
/// <c>GET /api/clinics</c> (any signed-in role: the pages' clinic filters), and the <c>clinicId</c> filter of the
/// worklist, the fleet overview and the cohorts: a clinic's pumps are those paired with its hubs now. The clinics and
/// the hub → clinic link are the gateway's (its hub registry); the read models are asked for the clinic's hub ids.
/// </summary>
internal static class ClinicEndpoints
{
    public static RouteGroupBuilder MapClinicEndpoints(this RouteGroupBuilder api)
    {
        api.MapGet("/clinics", async (HubStore hubs, CancellationToken ct) =>
                TypedResults.Ok((await hubs.ListClinicsAsync(ct)).Select(c => new ClinicResponse(c.Clinic.ClinicId, c.Clinic.Name, c.Clinic.Timezone, c.HubIds)).ToList()))
            .WithName("ListClinics").WithSummary("Clinics with their hubs (a clinic's pumps are its hubs' pumps)");
        return api;
    }

    /// <summary>
    /// The hub ids of <paramref name="clinicId"/> (null when no clinic was asked for), or an error on
    /// <paramref name="p"/> naming <c>clinicId</c> when it breaks the id rule or no clinic has it.
    /// </summary>
    public static async Task<(IReadOnlyList<string>? HubIds, Clinic? Clinic)> ResolveAsync(QueryParameters p, HubStore hubs, string? clinicId, CancellationToken ct)
    {
        if (clinicId is null)
        {
            return (null, null);
        }

        if (!QueryParameters.IsIdentifier(clinicId))
        {
            p.Error("clinicId", "must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ (protocol.md §1).");
            return (null, null);
        }

        if (await hubs.FindClinicAsync(clinicId, ct) is not { } found)
        {
            p.Error("clinicId", $"no clinic '{clinicId}' is registered (GET /api/clinics lists them).");
            return (null, null);
        }

        return (found.HubIds, found.Clinic);
    }
}
