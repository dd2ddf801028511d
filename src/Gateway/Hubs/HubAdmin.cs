using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using PumpFleet.Contracts.Hub;
using PumpFleet.Contracts.Grains;
using PumpFleet.EventStore.Audit;
using PumpFleet.Gateway.Hosting;
using PumpFleet.Gateway.Protocol;

namespace PumpFleet.Gateway.Hubs;

/// <summary>Outcome of a hub administration command.</summary>
public enum HubAdminStatus
{
    /// <summary>Done.</summary>
    Ok,
    /// <summary>The hub or serial is not a valid id.</summary>
    InvalidId,
    /// <summary>The hub already exists.</summary>
    Exists,
    /// <summary>The hub does not exist (or is revoked, for pairing).</summary>
    NotFound,
    /// <summary>The secret is too short.</summary>
    WeakSecret,
    /// <summary>The hub is revoked: revocation is final (provision a new hub id), so its history is never overwritten.</summary>
    Revoked,
    /// <summary>No clinic has the id given.</summary>
    UnknownClinic,
    /// <summary>A clinic's id, name or time zone breaks its rule (<see cref="HubAdmin.ClinicProblem"/> says which).</summary>
    InvalidClinic,
}

/// <summary>Result of provisioning or rotating: the secret is returned once and never stored in clear.</summary>
public sealed record HubSecretResult(HubAdminStatus Status, string HubId, string? Secret);

/// <summary>
/// Hub provisioning, rotation, revocation and pump pairing, shared by the CLI and the HTTP endpoints. Every command,
/// done or refused, is written to the audit trail with who asked and from where (docs/security.md).
/// </summary>
public sealed class HubAdmin(HubStore store, IServiceProvider services, IOptions<HubAuthOptions> options, AuditLog audit)
{
    /// <summary>Shortest secret accepted when the operator supplies one.</summary>
    public const int MinSecretLength = 16;

    /// <summary>Provisions a hub with <paramref name="secret"/> or a generated one.</summary>
    public async Task<HubSecretResult> ProvisionAsync(string hubId, string? secret, AuditActor actor, string? remote, CancellationToken ct, string? clinicId = null)
    {
        ArgumentNullException.ThrowIfNull(actor);
        var status = await ProvisionCoreAsync(hubId, secret is null ? null : secret.Length < MinSecretLength ? "" : secret, clinicId, actor, ct);
        await AuditAsync(actor, "hub.provision", hubId, status.Status, remote, ct, clinicId is null ? null : ("clinicId", clinicId));
        return status;
    }

    private async Task<HubSecretResult> ProvisionCoreAsync(string hubId, string? secret, string? clinicId, AuditActor actor, CancellationToken ct)
    {
        if (!HubTopics.IsValidId(hubId))
        {
            return new(HubAdminStatus.InvalidId, hubId, null);
        }

        if (secret is "")
        {
            return new(HubAdminStatus.WeakSecret, hubId, null);
        }

        // Clinics are never deleted, so a clinic found here still exists when the hub row references it.
        if (clinicId is not null && (!HubTopics.IsValidId(clinicId) || await store.FindClinicAsync(clinicId, ct) is null))
        {
            return new(HubAdminStatus.UnknownClinic, hubId, null);
        }

        secret ??= SecretHasher.NewSecret();
        var created = await store.TryCreateAsync(hubId, HubCredential.From(secret, options.Value), actor.Name, ct, clinicId);
        return created ? new(HubAdminStatus.Ok, hubId, secret) : new(HubAdminStatus.Exists, hubId, null);
    }

    /// <summary>Gives a hub a new secret. A revoked hub stays revoked (<see cref="HubAdminStatus.Revoked"/>).</summary>
    public async Task<HubSecretResult> RotateAsync(string hubId, string? secret, AuditActor actor, string? remote, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(actor);
        var r = await RotateCoreAsync(hubId, secret, ct);
        await AuditAsync(actor, "hub.rotate", hubId, r.Status, remote, ct);
        return r;
    }

    private async Task<HubSecretResult> RotateCoreAsync(string hubId, string? secret, CancellationToken ct)
    {
        if (!HubTopics.IsValidId(hubId))
        {
            return new(HubAdminStatus.InvalidId, hubId, null);
        }

        if (secret is not null && secret.Length < MinSecretLength)
        {
            return new(HubAdminStatus.WeakSecret, hubId, null);
        }

        secret ??= SecretHasher.NewSecret();
        if (await store.RotateAsync(hubId, HubCredential.From(secret, options.Value), ct))
        {
            return new(HubAdminStatus.Ok, hubId, secret);
        }

        return await store.FindAsync(hubId, ct) is { RevokedAt: not null } ? new(HubAdminStatus.Revoked, hubId, null) : new(HubAdminStatus.NotFound, hubId, null);
    }

    /// <summary>Revokes a hub: it can no longer connect, and the revocation is kept for good.</summary>
    public async Task<HubAdminStatus> RevokeAsync(string hubId, AuditActor actor, string? remote, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(actor);
        var s = !HubTopics.IsValidId(hubId) ? HubAdminStatus.InvalidId
            : await store.RevokeAsync(hubId, actor.Name, ct) ? HubAdminStatus.Ok : HubAdminStatus.NotFound;
        await AuditAsync(actor, "hub.revoke", hubId, s, remote, ct);
        return s;
    }

    /// <summary>Pairs a pump with a provisioned hub (a <c>pump.paired</c> event in the pump's stream).</summary>
    public async Task<HubAdminStatus> PairAsync(string hubId, string serial, AuditActor actor, string? remote, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(actor);
        var s = await PairCoreAsync(hubId, serial, actor.Name, ct);
        await AuditAsync(actor, "pump.pair", $"{serial}@{hubId}", s, remote, ct);
        return s;
    }

    private async Task<HubAdminStatus> PairCoreAsync(string hubId, string serial, string by, CancellationToken ct)
    {
        if (!HubTopics.IsValidId(hubId) || !HubTopics.IsValidId(serial))
        {
            return HubAdminStatus.InvalidId;
        }

        var hub = await store.FindAsync(hubId, ct);
        if (hub is null || hub.RevokedAt is not null)
        {
            return HubAdminStatus.NotFound;
        }

        // Resolved here, not in the constructor: provisioning works without a cluster (CLI), pairing needs one.
        var grains = services.GetRequiredService<IGrainFactory>();
        await grains.GetGrain<IPumpIngestGrain>(serial).PairAsync(hubId, by).WaitAsync(ct);
        return HubAdminStatus.Ok;
    }

    /// <summary>Longest clinic name accepted.</summary>
    public const int MaxClinicNameLength = 200;

    /// <summary>
    /// What is wrong with a clinic's fields, as (field, reason), or null when they are acceptable: the id follows the
    /// protocol's identifier rule, the name is 1–200 characters without control characters, and the time zone, when
    /// given, is an IANA id this machine knows.
    /// </summary>
    public static (string Field, string Reason)? ClinicProblem(string? clinicId, string? name, string? timezone)
    {
        if (clinicId is null || !HubTopics.IsValidId(clinicId))
        {
            return ("id", "must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ (protocol.md §1).");
        }

        if (string.IsNullOrWhiteSpace(name) || name.Length > MaxClinicNameLength || name.Any(char.IsControl))
        {
            return ("name", $"must be 1 to {MaxClinicNameLength} characters, not blank, without control characters.");
        }

        if (timezone is not null && (!TimeZoneInfo.TryFindSystemTimeZoneById(timezone, out var zone) || !zone.HasIanaId))
        {
            return ("timezone", $"'{timezone}' is not an IANA time zone id (e.g. Europe/Berlin).");
        }

        return null;
    }

    /// <summary>Registers a clinic (audited <c>clinic.create</c>).</summary>
    public async Task<HubAdminStatus> CreateClinicAsync(string? clinicId, string? name, string? timezone, AuditActor actor, string? remote, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(actor);
        var s = ClinicProblem(clinicId, name, timezone) is not null ? HubAdminStatus.InvalidClinic
            : await store.TryCreateClinicAsync(new Clinic(clinicId!, name!.Trim(), timezone), actor.Name, ct) ? HubAdminStatus.Ok : HubAdminStatus.Exists;
        var target = clinicId is { Length: > 64 } ? clinicId[..64] : clinicId ?? "";
        await AuditAsync(actor, "clinic.create", target, s, remote, ct, ("name", name));
        return s;
    }

    /// <summary>
    /// Puts a hub in a clinic, or in none when <paramref name="clinicId"/> is null (audited <c>hub.clinic</c>). A revoked
    /// hub keeps the clinic it had.
    /// </summary>
    public async Task<HubAdminStatus> AssignClinicAsync(string hubId, string? clinicId, AuditActor actor, string? remote, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(actor);
        var s = await AssignClinicCoreAsync(hubId, clinicId, ct);
        await AuditAsync(actor, "hub.clinic", hubId, s, remote, ct, ("clinicId", clinicId));
        return s;
    }

    private async Task<HubAdminStatus> AssignClinicCoreAsync(string hubId, string? clinicId, CancellationToken ct)
    {
        if (!HubTopics.IsValidId(hubId))
        {
            return HubAdminStatus.InvalidId;
        }

        if (clinicId is not null && (!HubTopics.IsValidId(clinicId) || await store.FindClinicAsync(clinicId, ct) is null))
        {
            return HubAdminStatus.UnknownClinic;
        }

        var hub = await store.FindAsync(hubId, ct);
        if (hub is null)
        {
            return HubAdminStatus.NotFound;
        }

        if (hub.RevokedAt is not null)
        {
            return HubAdminStatus.Revoked;
        }

        return await store.SetClinicAsync(hubId, clinicId, ct) ? HubAdminStatus.Ok : HubAdminStatus.NotFound;
    }

    /// <summary>The HTTP-style outcome recorded in the audit trail.</summary>
    public static int Outcome(HubAdminStatus status) => status switch
    {
        HubAdminStatus.Ok => 200,
        HubAdminStatus.InvalidId or HubAdminStatus.WeakSecret or HubAdminStatus.UnknownClinic or HubAdminStatus.InvalidClinic => 400,
        HubAdminStatus.NotFound => 404,
        HubAdminStatus.Exists or HubAdminStatus.Revoked => 409,
        _ => 500,
    };

    private Task AuditAsync(AuditActor actor, string action, string target, HubAdminStatus status, string? remote, CancellationToken ct,
        (string Key, string? Value)? extra = null)
    {
        var detail = new Dictionary<string, string?> { ["status"] = status.ToString() };
        if (extra is { } e)
        {
            detail[e.Key] = e.Value is { Length: > MaxClinicNameLength } v ? v[..MaxClinicNameLength] : e.Value;
        }

        return audit.WriteAsync(new AuditEntry(actor, action, target, Outcome(status), remote, detail), ct);
    }
}
