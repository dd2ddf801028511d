using Npgsql;

namespace PumpFleet.Gateway.Hubs;

/// <summary>A hub's credential row.</summary>
public sealed record HubRecord(string HubId, string SecretHash, DateTimeOffset CreatedAt, DateTimeOffset? RotatedAt, DateTimeOffset? RevokedAt);

/// <summary>
/// A secret as stored: our PBKDF2-SHA256 hash and, for an external mosquitto, its <c>$7$</c> form (null when
/// <c>Gateway:Hubs:BrokerHashIterations</c> is 0).
/// </summary>
public sealed record HubCredential(string SecretHash, string? BrokerHash)
{
    /// <summary>Hashes a plaintext secret both ways, with the configured iterations.</summary>
    public static HubCredential From(string secret, Hosting.HubAuthOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new(SecretHasher.Hash(secret, options.Pbkdf2Iterations),
            options.BrokerHashIterations > 0 ? BrokerSecretHasher.Hash(secret, options.BrokerHashIterations) : null);
    }
}

/// <summary>A hub that is not revoked, with its credential for the broker's password file (null: none stored).</summary>
public sealed record BrokerCredential(string HubId, string? BrokerHash);

/// <summary>Hub credentials and online status in PostgreSQL (tables of Sql/010_gateway.sql).</summary>
public sealed class HubStore(NpgsqlDataSource dataSource)
{
    /// <summary>The hub's row, or null when it was never provisioned.</summary>
    public async Task<HubRecord?> FindAsync(string hubId, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            "SELECT hub_id, secret_hash, created_at, rotated_at, revoked_at FROM pf_gateway_hubs WHERE hub_id = $1");
        cmd.Parameters.Add(new() { Value = hubId });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct))
        {
            return null;
        }

        return new HubRecord(r.GetString(0), r.GetString(1), await r.GetFieldValueAsync<DateTimeOffset>(2, ct),
            await r.IsDBNullAsync(3, ct) ? null : await r.GetFieldValueAsync<DateTimeOffset>(3, ct), await r.IsDBNullAsync(4, ct) ? null : await r.GetFieldValueAsync<DateTimeOffset>(4, ct));
    }

    /// <summary>Creates the hub. Returns false when it already exists (revoked or not).</summary>
    public async Task<bool> TryCreateAsync(string hubId, HubCredential credential, string? by, CancellationToken ct, string? clinicId = null)
    {
        ArgumentNullException.ThrowIfNull(credential);
        await using var cmd = dataSource.CreateCommand(
            "INSERT INTO pf_gateway_hubs (hub_id, secret_hash, created_by, broker_hash, clinic_id) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (hub_id) DO NOTHING");
        cmd.Parameters.Add(new() { Value = hubId });
        cmd.Parameters.Add(new() { Value = credential.SecretHash });
        cmd.Parameters.Add(new() { Value = (object?)by ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = (object?)credential.BrokerHash ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = (object?)clinicId ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        return await cmd.ExecuteNonQueryAsync(ct) == 1;
    }

    /// <summary>Registers a clinic. Returns false when the id is taken.</summary>
    public async Task<bool> TryCreateClinicAsync(Clinic clinic, string? by, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(clinic);
        await using var cmd = dataSource.CreateCommand(
            "INSERT INTO pf_gateway_clinics (clinic_id, name, timezone, created_by) VALUES ($1, $2, $3, $4) ON CONFLICT (clinic_id) DO NOTHING");
        cmd.Parameters.Add(new() { Value = clinic.ClinicId });
        cmd.Parameters.Add(new() { Value = clinic.Name });
        cmd.Parameters.Add(new() { Value = (object?)clinic.Timezone ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = (object?)by ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        return await cmd.ExecuteNonQueryAsync(ct) == 1;
    }

    /// <summary>Every clinic with its hubs (revoked ones included: their pumps' history stays the clinic's), by id.</summary>
    public async Task<List<ClinicWithHubs>> ListClinicsAsync(CancellationToken ct)
    {
        var result = new List<ClinicWithHubs>();
        await using var cmd = dataSource.CreateCommand("""
            SELECT c.clinic_id, c.name, c.timezone,
                   coalesce((SELECT array_agg(h.hub_id ORDER BY h.hub_id COLLATE "C") FROM pf_gateway_hubs h WHERE h.clinic_id = c.clinic_id), '{}')
              FROM pf_gateway_clinics c ORDER BY c.clinic_id COLLATE "C"
            """);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            result.Add(new ClinicWithHubs(new Clinic(r.GetString(0), r.GetString(1), await r.IsDBNullAsync(2, ct) ? null : r.GetString(2)),
                await r.GetFieldValueAsync<string[]>(3, ct)));
        }

        return result;
    }

    /// <summary>One clinic and its hub ids, or null when no clinic has that id.</summary>
    public async Task<ClinicWithHubs?> FindClinicAsync(string clinicId, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            SELECT c.clinic_id, c.name, c.timezone,
                   coalesce((SELECT array_agg(h.hub_id ORDER BY h.hub_id COLLATE "C") FROM pf_gateway_hubs h WHERE h.clinic_id = c.clinic_id), '{}')
              FROM pf_gateway_clinics c WHERE c.clinic_id = $1
            """);
        cmd.Parameters.Add(new() { Value = clinicId });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct)
            ? new ClinicWithHubs(new Clinic(r.GetString(0), r.GetString(1), await r.IsDBNullAsync(2, ct) ? null : r.GetString(2)), await r.GetFieldValueAsync<string[]>(3, ct))
            : null;
    }

    /// <summary>The clinic a hub stands in, or null (no such hub, or no clinic).</summary>
    public async Task<Clinic?> ClinicOfHubAsync(string hubId, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            SELECT c.clinic_id, c.name, c.timezone FROM pf_gateway_hubs h JOIN pf_gateway_clinics c ON c.clinic_id = h.clinic_id WHERE h.hub_id = $1
            """);
        cmd.Parameters.Add(new() { Value = hubId });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? new Clinic(r.GetString(0), r.GetString(1), await r.IsDBNullAsync(2, ct) ? null : r.GetString(2)) : null;
    }

    /// <summary>
    /// Puts a hub in a clinic (null: in none). Returns false when the hub does not exist; the caller checked the clinic.
    /// </summary>
    public async Task<bool> SetClinicAsync(string hubId, string? clinicId, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("UPDATE pf_gateway_hubs SET clinic_id = $2 WHERE hub_id = $1");
        cmd.Parameters.Add(new() { Value = hubId });
        cmd.Parameters.Add(new() { Value = (object?)clinicId ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        return await cmd.ExecuteNonQueryAsync(ct) == 1;
    }

    /// <summary>Replaces the secret of a hub that is not revoked. Returns false when the hub does not exist or is revoked.</summary>
    public async Task<bool> RotateAsync(string hubId, HubCredential credential, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(credential);
        // A revocation is never lifted or overwritten (015_hub_revocation.sql also refuses it in the database).
        await using var cmd = dataSource.CreateCommand(
            "UPDATE pf_gateway_hubs SET secret_hash = $2, broker_hash = $3, rotated_at = now() WHERE hub_id = $1 AND revoked_at IS NULL");
        cmd.Parameters.Add(new() { Value = hubId });
        cmd.Parameters.Add(new() { Value = credential.SecretHash });
        cmd.Parameters.Add(new() { Value = (object?)credential.BrokerHash ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        return await cmd.ExecuteNonQueryAsync(ct) == 1;
    }

    /// <summary>Revokes the hub (kept for the audit trail). Returns false when it does not exist or is already revoked.</summary>
    public async Task<bool> RevokeAsync(string hubId, string by, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            "UPDATE pf_gateway_hubs SET revoked_at = now(), revoked_by = $2 WHERE hub_id = $1 AND revoked_at IS NULL");
        cmd.Parameters.Add(new() { Value = hubId });
        cmd.Parameters.Add(new() { Value = by });
        return await cmd.ExecuteNonQueryAsync(ct) == 1;
    }

    /// <summary>The current credential of each of <paramref name="hubIds"/>: revoked and unknown hubs are absent.</summary>
    public async Task<Dictionary<string, string>> ActiveSecretHashesAsync(IReadOnlyCollection<string> hubIds, CancellationToken ct)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (hubIds.Count == 0)
        {
            return result;
        }

        await using var cmd = dataSource.CreateCommand(
            "SELECT hub_id, secret_hash FROM pf_gateway_hubs WHERE hub_id = ANY($1) AND revoked_at IS NULL");
        cmd.Parameters.Add(new() { Value = hubIds.ToArray() });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            result[r.GetString(0)] = r.GetString(1);
        }

        return result;
    }

    /// <summary>Every revoked hub id.</summary>
    public async Task<HashSet<string>> RevokedAsync(CancellationToken ct)
    {
        var result = new HashSet<string>(StringComparer.Ordinal);
        await using var cmd = dataSource.CreateCommand("SELECT hub_id FROM pf_gateway_hubs WHERE revoked_at IS NOT NULL");
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            result.Add(r.GetString(0));
        }

        return result;
    }

    /// <summary>Every hub that is not revoked, in hub id order, with its broker credential (for mosquitto's files).</summary>
    public async Task<List<BrokerCredential>> BrokerCredentialsAsync(CancellationToken ct)
    {
        var result = new List<BrokerCredential>();
        await using var cmd = dataSource.CreateCommand(
            "SELECT hub_id, broker_hash FROM pf_gateway_hubs WHERE revoked_at IS NULL ORDER BY hub_id COLLATE \"C\"");
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            result.Add(new BrokerCredential(r.GetString(0), await r.IsDBNullAsync(1, ct) ? null : r.GetString(1)));
        }

        return result;
    }

    /// <summary>Records a hub as online or offline (connection events, status topic, last will).</summary>
    public async Task SetStatusAsync(string hubId, bool online, string? firmware, DateTimeOffset? statusAt, DateTimeOffset now, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            INSERT INTO pf_gateway_hub_status AS s (hub_id, online, firmware, status_at, last_seen_at, connected_at, disconnected_at)
            VALUES ($1, $2, $3, $4, $5, CASE WHEN $2 THEN $5 END, CASE WHEN $2 THEN NULL ELSE $5 END)
            ON CONFLICT (hub_id) DO UPDATE SET
                online = $2,
                firmware = COALESCE($3, s.firmware),
                status_at = COALESCE($4, s.status_at),
                last_seen_at = GREATEST(s.last_seen_at, $5),
                connected_at = CASE WHEN $2 AND NOT s.online THEN $5 ELSE s.connected_at END,
                disconnected_at = CASE WHEN $2 THEN s.disconnected_at ELSE $5 END
            """);
        cmd.Parameters.Add(new() { Value = hubId });
        cmd.Parameters.Add(new() { Value = online });
        cmd.Parameters.Add(new() { Value = (object?)firmware ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = (object?)statusAt ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.TimestampTz });
        cmd.Parameters.Add(new() { Value = now });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Advances last_seen_at of hubs that sent something (batched by <see cref="HubActivityTracker"/>).</summary>
    public async Task TouchAsync(IReadOnlyDictionary<string, DateTimeOffset> seen, CancellationToken ct)
    {
        if (seen.Count == 0)
        {
            return;
        }

        await using var cmd = dataSource.CreateCommand("""
            INSERT INTO pf_gateway_hub_status AS s (hub_id, online, last_seen_at)
            SELECT h, true, t FROM unnest($1::text[], $2::timestamptz[]) AS x(h, t)
            ON CONFLICT (hub_id) DO UPDATE SET last_seen_at = GREATEST(s.last_seen_at, EXCLUDED.last_seen_at)
            """);
        cmd.Parameters.Add(new() { Value = seen.Keys.ToArray() });
        cmd.Parameters.Add(new() { Value = seen.Values.Select(v => v.ToUniversalTime()).ToArray() });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>A hub's status row.</summary>
    public async Task<HubStatus?> GetStatusAsync(string hubId, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            "SELECT hub_id, online, firmware, status_at, last_seen_at FROM pf_gateway_hub_status WHERE hub_id = $1");
        cmd.Parameters.Add(new() { Value = hubId });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct)
            ? new HubStatus(r.GetString(0), r.GetBoolean(1), await r.IsDBNullAsync(2, ct) ? null : r.GetString(2),
                await r.IsDBNullAsync(3, ct) ? null : await r.GetFieldValueAsync<DateTimeOffset>(3, ct), await r.GetFieldValueAsync<DateTimeOffset>(4, ct))
            : null;
    }
}

/// <summary>A clinic hubs stand in (<c>pf_gateway_clinics</c>).</summary>
/// <param name="Timezone">IANA time zone id, or null.</param>
public sealed record Clinic(string ClinicId, string Name, string? Timezone);

/// <summary>A clinic and the ids of the hubs in it.</summary>
public sealed record ClinicWithHubs(Clinic Clinic, IReadOnlyList<string> HubIds);

/// <summary>A hub's last known status.</summary>
public sealed record HubStatus(string HubId, bool Online, string? Firmware, DateTimeOffset? StatusAt, DateTimeOffset LastSeenAt);
