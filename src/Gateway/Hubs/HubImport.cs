using Npgsql;
using NpgsqlTypes;
using PumpFleet.Contracts.Hub;
using PumpFleet.EventStore.Registration;
using PumpFleet.Gateway.Hosting;

namespace PumpFleet.Gateway.Hubs;

/// <summary>One line of a hub import that cannot be provisioned, and why.</summary>
public sealed record HubImportError(int Line, string Message)
{
    /// <inheritdoc />
    public override string ToString() => $"line {Line}: {Message}";
}

/// <summary>
/// Outcome of <see cref="HubImport.ImportAsync"/>: the hubs provisioned with their secrets (the generated ones are
/// shown once, like <c>hubs provision</c>), or (none provisioned) every error found.
/// </summary>
public sealed record HubImportOutcome(IReadOnlyList<(string HubId, string Secret, bool Generated)> Provisioned, IReadOnlyList<HubImportError> Errors)
{
    /// <summary>True when the whole file was provisioned.</summary>
    public bool Done => Errors.Count == 0;
}

/// <summary>
/// Bulk provisioning of clinic hubs (docs/operations.md "Registering a fleet"): a CSV with the header
/// <c>hub_id,secret</c>, one hub per line, the secret empty to have one generated. Every line is validated (ids,
/// duplicates, secret length, the hub not yet known, revoked ones included: a revoked id stays burnt), the secrets are
/// hashed as <c>hubs provision</c> hashes them, and the rows go in with one binary COPY into a staging table and one
/// INSERT, in one transaction: any error refuses the whole file and names its lines.
/// </summary>
public sealed class HubImport(NpgsqlDataSource dataSource, HubAuthOptions options)
{
    /// <summary>The first line of the file.</summary>
    public const string Header = "hub_id,secret";

    /// <summary>How many errors an import reports at most.</summary>
    public const int ErrorLimit = ImportCsv.ErrorLimit;

    /// <summary>Validates and provisions the hubs of <paramref name="csv"/>, all or none.</summary>
    public async Task<HubImportOutcome> ImportAsync(TextReader csv, string by, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(csv);
        ArgumentException.ThrowIfNullOrWhiteSpace(by);
        var (rows, errors) = await ParseAsync(csv, ct);
        if (errors.Count > 0)
        {
            return new([], errors);
        }

        // PBKDF2 is the cost of an import (100,000 iterations a hub by default): hashed on every core.
        var hashed = new (int Line, string HubId, string Secret, bool Generated, HubCredential Credential)[rows.Count];
        await Parallel.ForAsync(0, rows.Count, ct, (i, _) =>
        {
            var (line, hubId, secret) = rows[i];
            var generated = secret is null;
            secret ??= SecretHasher.NewSecret();
            hashed[i] = (line, hubId, secret, generated, HubCredential.From(secret, options));
            return ValueTask.CompletedTask;
        });

        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await using (var create = new NpgsqlCommand("""
            CREATE TEMPORARY TABLE pf_gateway_hub_import (
                line int NOT NULL, hub_id text NOT NULL PRIMARY KEY, secret_hash text NOT NULL, broker_hash text NULL) ON COMMIT DROP
            """, conn, tx))
        {
            await create.ExecuteNonQueryAsync(ct);
        }

        await using (var w = await conn.BeginBinaryImportAsync("COPY pf_gateway_hub_import (line, hub_id, secret_hash, broker_hash) FROM STDIN (FORMAT BINARY)", ct))
        {
            foreach (var h in hashed)
            {
                await w.StartRowAsync(ct);
                await w.WriteAsync(h.Line, NpgsqlDbType.Integer, ct);
                await w.WriteAsync(h.HubId, NpgsqlDbType.Text, ct);
                await w.WriteAsync(h.Credential.SecretHash, NpgsqlDbType.Text, ct);
                if (h.Credential.BrokerHash is { } broker)
                {
                    await w.WriteAsync(broker, NpgsqlDbType.Text, ct);
                }
                else
                {
                    await w.WriteNullAsync(ct);
                }
            }

            await w.CompleteAsync(ct);
        }

        await using (var check = new NpgsqlCommand("""
            SELECT i.line, i.hub_id, h.revoked_at IS NOT NULL FROM pf_gateway_hub_import i JOIN pf_gateway_hubs h USING (hub_id)
            ORDER BY i.line LIMIT $1
            """, conn, tx))
        {
            check.Parameters.Add(new() { Value = ErrorLimit });
            await using var r = await check.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                errors.Add(new(r.GetInt32(0), r.GetBoolean(2)
                    ? $"hub {r.GetString(1)} is revoked; a revocation is final: provision the device under a new hub id"
                    : $"hub {r.GetString(1)} already exists; use 'hubs rotate' to give it a new secret"));
            }
        }

        if (errors.Count > 0)
        {
            await tx.RollbackAsync(ct);
            return new([], errors);
        }

        // A hub created between the check and here (the dashboard, a dev-fleet connect) fails the INSERT on its
        // primary key: the import is then refused as a whole, not half done.
        await using (var insert = new NpgsqlCommand("""
            INSERT INTO pf_gateway_hubs (hub_id, secret_hash, broker_hash, created_by)
            SELECT hub_id, secret_hash, broker_hash, $1 FROM pf_gateway_hub_import ORDER BY line
            """, conn, tx))
        {
            insert.Parameters.Add(new() { Value = by });
            await insert.ExecuteNonQueryAsync(ct);
        }

        await tx.CommitAsync(ct);
        return new([.. hashed.Select(h => (h.HubId, h.Secret, h.Generated))], []);
    }

    /// <summary>Reads and validates the lines: the header, one or two fields, valid ids, no hub twice, secrets long enough.</summary>
    public static async Task<(List<(int Line, string HubId, string? Secret)> Rows, List<HubImportError> Errors)> ParseAsync(TextReader csv, CancellationToken ct = default)
    {
        var rows = new List<(int, string, string?)>();
        var firstLine = new Dictionary<string, int>(StringComparer.Ordinal);
        var errors = await ImportCsv.ReadAsync(
            csv,
            header => header.Equals(Header, StringComparison.OrdinalIgnoreCase) || header.Equals("hub_id", StringComparison.OrdinalIgnoreCase),
            text => $"the first line must be the header '{Header}' (or 'hub_id' to generate every secret), not '{text}'",
            $"the file is empty (expected the header '{Header}' and one line per hub)",
            (line, fields) =>
            {
                if (fields.Length > 2)
                {
                    return $"expected at most 2 fields ({Header}), found {fields.Length}";
                }

                var hubId = fields[0].Trim();
                // A secret is taken as written (no trim): it is what the hub will send.
                var secret = fields.Length == 2 && fields[1].Length > 0 ? fields[1] : null;
                if (!HubTopics.IsValidId(hubId))
                {
                    return ImportCsv.InvalidId("hub id", hubId);
                }

                if (secret is not null && secret.Length < HubAdmin.MinSecretLength)
                {
                    // The secret itself is never echoed: the error names the line.
                    return $"the secret of hub {hubId} is shorter than {HubAdmin.MinSecretLength} characters (leave it empty to have one generated)";
                }

                if (!firstLine.TryAdd(hubId, line))
                {
                    return $"hub {hubId} is listed twice (first on line {firstLine[hubId]})";
                }

                rows.Add((line, hubId, secret));
                return null;
            },
            ct);
        return (rows, [.. errors.Select(e => new HubImportError(e.Line, e.Message))]);
    }
}
