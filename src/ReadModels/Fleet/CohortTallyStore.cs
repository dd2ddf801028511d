using Npgsql;
using NpgsqlTypes;

namespace PumpFleet.ReadModels;

/// <summary><c>pf_cohort_tally</c>: where the tally grains keep their pumps' contributions between activations.</summary>
public sealed class CohortTallyStore(NpgsqlDataSource dataSource) : IPartitionTallyStore<TallyMember>
{
    /// <summary>The saved contributions of one log partition's pumps (once, when its tally grain activates).</summary>
    public async Task<IReadOnlyList<TallyMember>> LoadAsync(int partition, CancellationToken ct = default)
    {
        await using var cmd = dataSource.CreateCommand("""
            SELECT serial, model, firmware, lot, first_event_at, last_event_at, alarms, critical_alarms, anomalies, version
              FROM pf_cohort_tally WHERE log_partition = $1
            """);
        cmd.Parameters.Add(new() { Value = (short)partition });
        var result = new List<TallyMember>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            result.Add(new TallyMember(
                r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2),
                r.IsDBNull(3) ? null : r.GetString(3),
                r.IsDBNull(4) ? null : r.GetFieldValue<DateTimeOffset>(4), r.IsDBNull(5) ? null : r.GetFieldValue<DateTimeOffset>(5),
                r.GetInt32(6), r.GetInt32(7), r.GetInt32(8), r.GetInt64(9)));
        }

        return result;
    }

    /// <summary>
    /// Saves changed contributions in one statement. A row never goes back: an older save arriving late (a grain on a
    /// silo that just lost its partition) cannot overwrite a newer version.
    /// </summary>
    public async Task SaveAsync(int partition, IReadOnlyList<TallyMember> members, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(members);
        if (members.Count == 0)
        {
            return;
        }

        await using var cmd = dataSource.CreateCommand("""
            INSERT INTO pf_cohort_tally (serial, log_partition, model, firmware, lot, first_event_at, last_event_at, alarms, critical_alarms, anomalies, version)
            SELECT serial, $1, model, firmware, lot, first_at, last_at, alarms, critical, anomalies, version
              FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[], $8::int[], $9::int[], $10::int[], $11::bigint[])
                   AS m(serial, model, firmware, lot, first_at, last_at, alarms, critical, anomalies, version)
            ON CONFLICT (serial) DO UPDATE SET model = excluded.model, firmware = excluded.firmware, lot = excluded.lot,
                first_event_at = excluded.first_event_at, last_event_at = excluded.last_event_at, alarms = excluded.alarms,
                critical_alarms = excluded.critical_alarms, anomalies = excluded.anomalies, version = excluded.version
             WHERE pf_cohort_tally.version < excluded.version
            """);
        cmd.Parameters.Add(new() { Value = (short)partition });
        cmd.Parameters.Add(new() { Value = members.Select(m => m.Serial).ToArray() });
        cmd.Parameters.Add(new() { Value = members.Select(m => m.Model).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = members.Select(m => m.Firmware).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = members.Select(m => m.Lot).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = members.Select(m => m.First).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
        cmd.Parameters.Add(new() { Value = members.Select(m => m.Last).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
        cmd.Parameters.Add(new() { Value = members.Select(m => m.Alarms).ToArray() });
        cmd.Parameters.Add(new() { Value = members.Select(m => m.CriticalAlarms).ToArray() });
        cmd.Parameters.Add(new() { Value = members.Select(m => m.Anomalies).ToArray() });
        cmd.Parameters.Add(new() { Value = members.Select(m => m.Version).ToArray() });
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
