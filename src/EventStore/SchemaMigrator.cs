using System.Globalization;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace PumpFleet.EventStore;

/// <summary>An assembly whose embedded <c>Sql/NNN_name.sql</c> resources are schema migrations.</summary>
public sealed record MigrationAssembly(Assembly Assembly);

/// <summary>
/// Applies the project's own versioned SQL migrations (embedded resources named <c>NNN_name.sql</c>), each once, in
/// number order, each in its own transaction. A transaction-scoped advisory lock, taken in each of those
/// transactions, serialises processes that start at the same time; the scripts are also written to be safe to re-run.
/// </summary>
public sealed partial class SchemaMigrator(NpgsqlDataSource dataSource, IEnumerable<MigrationAssembly> assemblies, ILogger<SchemaMigrator> logger)
{
    /// <summary>
    /// The one switch of every host for migrating at start (<c>PumpFleet:MigrateOnStart</c>). The owner of the schema is
    /// the silo's <c>migrate</c> command (the Helm hook); the silo also migrates at start unless this is false, the
    /// gateway only when it is true (default: in Development), the dashboard never.
    /// </summary>
    public const string MigrateOnStartKey = "PumpFleet:MigrateOnStart";

    // Arbitrary constant shared by every PumpFleet process: "PFMIGRAT" as a 64-bit key.
    private const long LockKey = 0x5046_4D49_4752_4154;

    /// <summary>The migrations known to this process, in the order they apply.</summary>
    public IReadOnlyList<Migration> Migrations { get; } = Discover(assemblies.Append(new MigrationAssembly(typeof(SchemaMigrator).Assembly)));

    /// <summary>Applies every pending migration. Returns the ids applied by this call.</summary>
    public Task<IReadOnlyList<string>> MigrateAsync(CancellationToken ct = default) => MigrateAsync(int.MaxValue, ct);

    /// <summary>
    /// Applies the pending migrations numbered up to <paramref name="throughNumber"/>: a database as an older release
    /// left it, for tests of a conversion in place and for benchmarks that compare a layout with the one before it.
    /// </summary>
    public async Task<IReadOnlyList<string>> MigrateAsync(int throughNumber, CancellationToken ct = default)
    {
        // The lock is transaction-scoped (pg_advisory_xact_lock), taken again in each migration's transaction: it ends
        // with the transaction, on every path, so a failed migration cannot hand a held lock to the next borrower of
        // this pooled connection (the platform's pool does not reset sessions, EventStoreDataSource.Build). Processes
        // migrating at once still apply each migration once: each re-reads under the lock whether it is applied.
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        Dictionary<string, string> applied;
        await using (var tx = await conn.BeginTransactionAsync(ct))
        {
            await LockAsync(conn, tx, ct);
            await using (var create = new NpgsqlCommand("""
                CREATE TABLE IF NOT EXISTS pf_schema_migrations (
                    id text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
                """, conn, tx))
            {
                await create.ExecuteNonQueryAsync(ct);
            }

            applied = await AppliedAsync(conn, tx, null, ct);
            await tx.CommitAsync(ct);
        }

        var done = new List<string>();
        foreach (var m in Migrations.Where(m => m.Number <= throughNumber))
        {
            if (applied.TryGetValue(m.Id, out var checksum))
            {
                if (checksum != m.Checksum)
                {
                    LogChecksumChanged(m.Id);
                }

                continue;
            }

            await using var tx = await conn.BeginTransactionAsync(ct);
            await LockAsync(conn, tx, ct);
            // Another process may have applied it since the read above (it held the lock meanwhile).
            if ((await AppliedAsync(conn, tx, m.Id, ct)).Count > 0)
            {
                await tx.CommitAsync(ct);
                continue;
            }

            await using (var cmd = new NpgsqlCommand(m.Sql, conn, tx))
            {
                await cmd.ExecuteNonQueryAsync(ct);
            }

            await using (var cmd = new NpgsqlCommand("INSERT INTO pf_schema_migrations (id, checksum) VALUES ($1, $2)", conn, tx))
            {
                cmd.Parameters.Add(new() { Value = m.Id });
                cmd.Parameters.Add(new() { Value = m.Checksum });
                await cmd.ExecuteNonQueryAsync(ct);
            }

            await tx.CommitAsync(ct);
            LogApplied(m.Id);
            done.Add(m.Id);
        }

        return done;
    }

    private static async Task LockAsync(NpgsqlConnection conn, NpgsqlTransaction tx, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand($"SELECT pg_advisory_xact_lock({LockKey})", conn, tx);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    // The applied migrations' checksums by id: all of them, or only id's row when id is given.
    private static async Task<Dictionary<string, string>> AppliedAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string? id, CancellationToken ct)
    {
        var applied = new Dictionary<string, string>(StringComparer.Ordinal);
        await using var cmd = new NpgsqlCommand("SELECT id, checksum FROM pf_schema_migrations WHERE $1::text IS NULL OR id = $1", conn, tx);
        cmd.Parameters.Add(new() { Value = (object?)id ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            applied[r.GetString(0)] = r.GetString(1);
        }

        return applied;
    }

    private static List<Migration> Discover(IEnumerable<MigrationAssembly> assemblies)
    {
        var list = new List<Migration>();
        foreach (var asm in assemblies.Select(a => a.Assembly).Distinct())
        {
            foreach (var name in asm.GetManifestResourceNames())
            {
                var match = MigrationName().Match(name);
                if (!match.Success)
                {
                    continue;
                }

                using var stream = asm.GetManifestResourceStream(name)!;
                using var reader = new StreamReader(stream, Encoding.UTF8);
                var sql = reader.ReadToEnd();
                var id = match.Groups["id"].Value;
                list.Add(new Migration(
                    id,
                    int.Parse(match.Groups["n"].Value, CultureInfo.InvariantCulture),
                    sql,
                    Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(sql)))));
            }
        }

        var duplicate = list.GroupBy(m => m.Number).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new InvalidOperationException(
                $"Two migrations share number {duplicate.Key}: {string.Join(", ", duplicate.Select(m => m.Id))}.");
        }

        return [.. list.OrderBy(m => m.Number)];
    }

    [GeneratedRegex(@"\.Sql\.(?<id>(?<n>\d{3})_[A-Za-z0-9_]+)\.sql$")]
    private static partial Regex MigrationName();

    [LoggerMessage(Level = LogLevel.Information, Message = "Applied schema migration {Id}")]
    private partial void LogApplied(string id);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Schema migration {Id} changed after it was applied; it is not re-run. Add a new migration instead.")]
    private partial void LogChecksumChanged(string id);
}

/// <summary>One migration script.</summary>
public sealed record Migration(string Id, int Number, string Sql, string Checksum);
