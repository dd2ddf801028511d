using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using PumpFleet.Contracts.Hub;
using PumpFleet.Contracts.Grains;
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
}

/// <summary>Result of provisioning or rotating: the secret is returned once and never stored in clear.</summary>
public sealed record HubSecretResult(HubAdminStatus Status, string HubId, string? Secret);

/// <summary>Hub provisioning, rotation, revocation and pump pairing, shared by the CLI and the HTTP endpoints.</summary>
public sealed class HubAdmin(HubStore store, IServiceProvider services, IOptions<HubAuthOptions> options)
{
    /// <summary>Shortest secret accepted when the operator supplies one.</summary>
    public const int MinSecretLength = 16;

    /// <summary>Provisions a hub with <paramref name="secret"/> or a generated one.</summary>
    public async Task<HubSecretResult> ProvisionAsync(string hubId, string? secret, string? by, CancellationToken ct)
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
        var created = await store.TryCreateAsync(hubId, SecretHasher.Hash(secret, options.Value.Pbkdf2Iterations), by, ct);
        return created ? new(HubAdminStatus.Ok, hubId, secret) : new(HubAdminStatus.Exists, hubId, null);
    }

    /// <summary>Gives a hub a new secret (and lifts a revocation).</summary>
    public async Task<HubSecretResult> RotateAsync(string hubId, string? secret, CancellationToken ct)
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
        return await store.RotateAsync(hubId, SecretHasher.Hash(secret, options.Value.Pbkdf2Iterations), ct)
            ? new(HubAdminStatus.Ok, hubId, secret)
            : new(HubAdminStatus.NotFound, hubId, null);
    }

    /// <summary>Revokes a hub: it can no longer connect.</summary>
    public async Task<HubAdminStatus> RevokeAsync(string hubId, CancellationToken ct) =>
        !HubTopics.IsValidId(hubId) ? HubAdminStatus.InvalidId
        : await store.RevokeAsync(hubId, ct) ? HubAdminStatus.Ok : HubAdminStatus.NotFound;

    /// <summary>Pairs a pump with a provisioned hub (a <c>pump.paired</c> event in the pump's stream).</summary>
    public async Task<HubAdminStatus> PairAsync(string hubId, string serial, string by, CancellationToken ct)
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
}
