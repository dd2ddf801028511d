using Npgsql;
using PumpFleet.Contracts;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;
using PumpFleet.Domain.Therapies;
using PumpFleet.EventStore;
using PumpFleet.Projections;

namespace PumpFleet.ReadModels;

/// <summary>
/// <c>pf_therapies</c> and <c>pf_therapy_pumps</c> from the therapy streams, and <c>pf_refill_log</c> from the pumps'
/// <c>refill</c> events. A therapy's rows are its fold (<see cref="TherapyState"/>, the grain's own code) at the newest
/// version the page holds: therapy streams are a handful of events, so the projection re-reads the stream up to that
/// version rather than keeping a second, hand-written fold in SQL. Each row depends on one stream only, so the
/// projection partitions like the others.
/// </summary>
public sealed class TherapyProjection(IEventReader reader) : IProjection
{
    /// <summary>The projection's name.</summary>
    public const string ProjectionName = "therapies";

    /// <inheritdoc />
    public string Name => ProjectionName;

    /// <inheritdoc />
    public IReadOnlyList<string> Tables { get; } = ["pf_therapies", "pf_therapy_pumps", "pf_refill_log"];

    /// <inheritdoc />
    public async Task ApplyAsync(NpgsqlConnection conn, NpgsqlTransaction tx, IReadOnlyList<StoredEvent> events, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(events);
        await using var batch = new NpgsqlBatch(conn, tx);
        var therapies = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var stored in events)
        {
            if (StreamIds.IsTherapy(stored.StreamId))
            {
                therapies[stored.StreamId] = Math.Max(therapies.GetValueOrDefault(stored.StreamId), stored.Version);
            }
            else if (stored.Type == "refill" && StreamIds.IsPump(stored.StreamId)
                     && EventJson.Deserialize(stored.Type, stored.Data) is RefillPerformed r)
            {
                batch.BatchCommands.Add(Command("""
                    INSERT INTO pf_refill_log (serial, seq, at, drug, concentration, concentration_unit, added_ml, expected_residual_ml, aspirated_residual_ml)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (serial, seq) DO NOTHING
                    """, stored.StreamId, r.Seq, (stored.ClockSuspect ? stored.ReceivedAt : r.At).ToUniversalTime(), r.Drug, r.Concentration.Value,
                    r.Concentration.Unit, r.AddedMl, r.ExpectedResidualMl, r.AspiratedResidualMl));
            }
        }

        foreach (var (stream, version) in therapies)
        {
            var state = new TherapyState { Id = stream[StreamIds.TherapyPrefix.Length..] };
            await foreach (var e in reader.ReadStreamAsync(stream, 0, ct))
            {
                if (e.Version > version)
                {
                    break;
                }

                if (EventJson.Deserialize(e.Type, e.Data) is TherapyEvent te)
                {
                    state.Apply(te);
                }
            }

            if (!state.Exists)
            {
                continue;
            }

            // Guarded by version: a replayed older page never moves a therapy back.
            batch.BatchCommands.Add(Command("""
                INSERT INTO pf_therapies (id, phase, indication, opened_at, current_serial, implanted_at, ended_at, version, updated_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
                ON CONFLICT (id) DO UPDATE SET phase = excluded.phase, indication = excluded.indication, opened_at = excluded.opened_at,
                    current_serial = excluded.current_serial, implanted_at = excluded.implanted_at, ended_at = excluded.ended_at,
                    version = excluded.version, updated_at = now()
                WHERE pf_therapies.version < excluded.version
                """, state.Id, state.Phase, state.Indication, state.OpenedAt!.Value.ToUniversalTime(), state.CurrentSerial,
                state.FirstImplantAt?.ToUniversalTime(), state.EndedAt?.ToUniversalTime(), state.Version));
            foreach (var p in state.Pumps)
            {
                // A serial belongs to one therapy (the API refuses an implant of a serial another therapy holds).
                batch.BatchCommands.Add(Command("""
                    INSERT INTO pf_therapy_pumps (serial, therapy_id, implanted_at, explanted_at, explant_reason)
                    VALUES ($1, $2, $3, $4, $5)
                    ON CONFLICT (serial) DO UPDATE SET therapy_id = excluded.therapy_id, implanted_at = excluded.implanted_at,
                        explanted_at = excluded.explanted_at, explant_reason = excluded.explant_reason
                    """, p.Serial, state.Id, p.ImplantedAt.ToUniversalTime(), p.ExplantedAt?.ToUniversalTime(), p.ExplantReason));
            }
        }

        if (batch.BatchCommands.Count > 0)
        {
            await batch.ExecuteNonQueryAsync(ct);
        }
    }

    private static NpgsqlBatchCommand Command(string sql, params object?[] values)
    {
        var cmd = new NpgsqlBatchCommand(sql);
        foreach (var v in values)
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = v ?? DBNull.Value });
        }

        return cmd;
    }
}
