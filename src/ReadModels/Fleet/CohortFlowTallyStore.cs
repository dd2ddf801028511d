using Npgsql;
using NpgsqlTypes;

namespace PumpFleet.ReadModels;

/// <summary><c>pf_cohort_flow</c>: where the cohort flow tally grains keep their pumps between activations.</summary>
public sealed class CohortFlowTallyStore(NpgsqlDataSource dataSource) : IPartitionTallyStore<FlowMember>
{
    /// <summary>The saved pumps of one log partition (once, when its grain activates).</summary>
    public async Task<IReadOnlyList<FlowMember>> LoadAsync(int partition, CancellationToken ct = default)
    {
        await using var cmd = dataSource.CreateCommand("""
            SELECT serial, model, firmware, lot, delivered_total_ml, delivered_at_refill_ml, refills, last_refill_at, flow_factor, cycle_ml, version
              FROM pf_cohort_flow WHERE log_partition = $1
            """);
        cmd.Parameters.Add(new() { Value = (short)partition });
        var result = new List<FlowMember>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            result.Add(new FlowMember(
                r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2), r.IsDBNull(3) ? null : r.GetString(3),
                r.GetDouble(4), r.GetDouble(5), r.GetInt32(6), r.IsDBNull(7) ? null : r.GetFieldValue<DateTimeOffset>(7),
                r.IsDBNull(8) ? null : r.GetDouble(8), r.IsDBNull(9) ? null : r.GetDouble(9), r.GetInt64(10)));
        }

        return result;
    }

    /// <summary>
    /// Saves changed pumps in one statement. A row never goes back: an older save arriving late (a grain on a silo that
    /// just lost its partition) cannot overwrite a newer version.
    /// </summary>
    public async Task SaveAsync(int partition, IReadOnlyList<FlowMember> members, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(members);
        if (members.Count == 0)
        {
            return;
        }

        await using var cmd = dataSource.CreateCommand("""
            INSERT INTO pf_cohort_flow (serial, log_partition, model, firmware, lot, delivered_total_ml, delivered_at_refill_ml, refills,
                                        last_refill_at, flow_factor, cycle_ml, version)
            SELECT serial, $1, model, firmware, lot, total, at_refill, refills, refill_at, factor, cycle, version
              FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::float8[], $8::int[], $9::timestamptz[],
                          $10::float8[], $11::float8[], $12::bigint[])
                   AS m(serial, model, firmware, lot, total, at_refill, refills, refill_at, factor, cycle, version)
            ON CONFLICT (serial) DO UPDATE SET model = excluded.model, firmware = excluded.firmware, lot = excluded.lot,
                delivered_total_ml = excluded.delivered_total_ml, delivered_at_refill_ml = excluded.delivered_at_refill_ml,
                refills = excluded.refills, last_refill_at = excluded.last_refill_at, flow_factor = excluded.flow_factor,
                cycle_ml = excluded.cycle_ml, version = excluded.version
             WHERE pf_cohort_flow.version < excluded.version
            """);
        cmd.Parameters.Add(new() { Value = (short)partition });
        cmd.Parameters.Add(new() { Value = members.Select(m => m.Serial).ToArray() });
        cmd.Parameters.Add(new() { Value = members.Select(m => m.Model).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = members.Select(m => m.Firmware).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = members.Select(m => m.Lot).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        cmd.Parameters.Add(new() { Value = members.Select(m => m.DeliveredTotalMl).ToArray() });
        cmd.Parameters.Add(new() { Value = members.Select(m => m.DeliveredAtRefillMl).ToArray() });
        cmd.Parameters.Add(new() { Value = members.Select(m => m.Refills).ToArray() });
        cmd.Parameters.Add(new() { Value = members.Select(m => m.LastRefillAt).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
        cmd.Parameters.Add(new() { Value = members.Select(m => m.Factor).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Double });
        cmd.Parameters.Add(new() { Value = members.Select(m => m.CycleMl).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Double });
        cmd.Parameters.Add(new() { Value = members.Select(m => m.Version).ToArray() });
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
