using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;
using PumpFleet.Domain.Drugs;
using PumpFleet.EventStore;
using PumpFleet.Projections;

namespace PumpFleet.ReadModels;

/// <summary>
/// <c>pf_cohort_stats</c> (model × firmware × lot): pumps, pump-days, alarms and anomalies. Per-pump contributions
/// live in <c>pf_cohort_members</c>, so a pump whose firmware changes moves between cohorts cleanly; the cohort rows
/// then change by each changed pump's new contribution minus its old one (a re-count of the cohorts' members per page
/// cost a scan of every member of a big cohort for every page).
/// The members also carry the surveillance dimensions (indication, normalised drug, therapy phase, implant and explant
/// dates) and the first time of each failure kind, from which the API groups cohorts by any dimension, counts pumps
/// affected and estimates device survival.
/// </summary>
public sealed class CohortProjection : IProjection
{
    /// <summary>The projection's name.</summary>
    public const string ProjectionName = "cohorts";

    /// <inheritdoc />
    public string Name => ProjectionName;

    /// <inheritdoc />
    public IReadOnlyList<string> Tables { get; } = ["pf_cohort_members", "pf_cohort_stats"];

    /// <inheritdoc />
    public async Task ApplyAsync(NpgsqlConnection conn, NpgsqlTransaction tx, IReadOnlyList<StoredEvent> events, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(events);
        // Fleet-level streams (cohort signals) are not pumps; the anomaly projection still sees them.
        events = [.. events.Where(e => Contracts.StreamIds.IsPump(e.StreamId))];
        var serials = events.Select(e => e.StreamId).Distinct(StringComparer.Ordinal).ToArray();
        var members = await LoadAsync(conn, tx, serials, ct);
        // Each pump's contribution before this page: the cohort rows change by new minus old, never by a re-count.
        var before = members.Values.ToDictionary(m => m.Serial, m => m.Share(), StringComparer.Ordinal);

        var changed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var stored in events)
        {
            if (!members.TryGetValue(stored.StreamId, out var m))
            {
                m = new Member { Serial = stored.StreamId };
                members[stored.StreamId] = m;
            }

            if (stored.Version <= m.Version)
            {
                continue;
            }

            m.Version = stored.Version;
            changed.Add(m.Serial);
            var e = EventJson.Deserialize(stored.Type, stored.Data);
            if (e is DeviceEvent d && !stored.ClockSuspect)
            {
                m.First = m.First is { } f && f <= d.At ? f : d.At;
                m.Last = m.Last is { } l && l >= d.At ? l : d.At;
            }

            var trusted = e is not DeviceEvent || !stored.ClockSuspect;
            switch (e)
            {
                case TherapyPhaseChanged x when trusted:
                    m.ApplyPhase(x);
                    break;
                case PrescriptionSet x when trusted && (m.DrugAt is not { } da || x.At >= da):
                    // Normalised, so "Lioresal", "Baclofen" and "baclofen" are one cohort and an admixture one more.
                    m.Drug = DrugVocabulary.Normalize(x.Drug).Canonical;
                    m.DrugAt = x.At;
                    break;
                case DeviceIdentified x:
                    m.Model = x.Device.Model;
                    m.Firmware = x.Device.Firmware;
                    m.Lot = x.Device.Lot;
                    break;
                case AlarmRaised x:
                    if (trusted)
                    {
                        m.FirstFailure("alarm:" + x.Code, x.At);
                    }

                    m.Alarms++;
                    if (x.Severity == "critical")
                    {
                        m.CriticalAlarms++;
                    }

                    break;
                case AnomalyDetected x:
                    m.FirstFailure("anomaly:" + x.Kind, x.At);
                    m.Anomalies++;
                    break;
            }
        }

        if (changed.Count == 0)
        {
            return;
        }

        await using (var batch = new NpgsqlBatch(conn, tx))
        {
            foreach (var serial in changed)
            {
                var m = members[serial];
                var cmd = new NpgsqlBatchCommand("""
                    INSERT INTO pf_cohort_members (serial, model, firmware, lot, first_event_at, last_event_at, alarms, critical_alarms, anomalies, version,
                        indication, drug, phase, implanted_at, explanted_at, first_failures, phase_at, drug_at)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16::jsonb, $17, $18)
                    ON CONFLICT (serial) DO UPDATE SET model = excluded.model, firmware = excluded.firmware, lot = excluded.lot,
                        first_event_at = excluded.first_event_at, last_event_at = excluded.last_event_at, alarms = excluded.alarms,
                        critical_alarms = excluded.critical_alarms, anomalies = excluded.anomalies, version = excluded.version,
                        indication = excluded.indication, drug = excluded.drug, phase = excluded.phase, implanted_at = excluded.implanted_at,
                        explanted_at = excluded.explanted_at, first_failures = excluded.first_failures, phase_at = excluded.phase_at, drug_at = excluded.drug_at
                    """);
                cmd.Parameters.Add(new() { Value = m.Serial });
                cmd.Parameters.Add(new() { Value = (object?)m.Model ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
                cmd.Parameters.Add(new() { Value = (object?)m.Firmware ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
                cmd.Parameters.Add(new() { Value = (object?)m.Lot ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
                cmd.Parameters.Add(new() { Value = m.First is { } f ? f.ToUniversalTime() : DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
                cmd.Parameters.Add(new() { Value = m.Last is { } l ? l.ToUniversalTime() : DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
                cmd.Parameters.Add(new() { Value = m.Alarms });
                cmd.Parameters.Add(new() { Value = m.CriticalAlarms });
                cmd.Parameters.Add(new() { Value = m.Anomalies });
                cmd.Parameters.Add(new() { Value = m.Version });
                cmd.Parameters.Add(new() { Value = (object?)m.Indication ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
                cmd.Parameters.Add(new() { Value = (object?)m.Drug ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
                cmd.Parameters.Add(new() { Value = (object?)m.Phase ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
                cmd.Parameters.Add(new() { Value = m.ImplantedAt is { } ia ? ia.ToUniversalTime() : DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
                cmd.Parameters.Add(new() { Value = m.ExplantedAt is { } ea ? ea.ToUniversalTime() : DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
                cmd.Parameters.Add(new() { Value = JsonSerializer.Serialize(m.FirstFailures), NpgsqlDbType = NpgsqlDbType.Text });
                cmd.Parameters.Add(new() { Value = m.PhaseAt is { } pa ? pa.ToUniversalTime() : DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
                cmd.Parameters.Add(new() { Value = m.DrugAt is { } dra ? dra.ToUniversalTime() : DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
                batch.BatchCommands.Add(cmd);
            }

            await batch.ExecuteNonQueryAsync(ct);
        }

        // Per cohort: the sum of (new - old) contributions of the page's pumps. A pump that moved cohorts leaves its old
        // one and joins the new one. Cost per page: the cohorts touched, not their members.
        var deltas = new SortedDictionary<(string, string, string), Contribution>();
        foreach (var serial in changed)
        {
            if (before.TryGetValue(serial, out var old) && old.Cohort.Item1.Length > 0)
            {
                deltas[old.Cohort] = deltas.GetValueOrDefault(old.Cohort) - old;
            }

            var now = members[serial].Share();
            if (now.Cohort.Item1.Length > 0)
            {
                deltas[now.Cohort] = deltas.GetValueOrDefault(now.Cohort) + now;
            }
        }

        if (deltas.Count == 0)
        {
            return;
        }

        // Sorted keys: two partitions updating the same cohorts lock them in the same order (no deadlock).
        await using var update = new NpgsqlBatch(conn, tx);
        foreach (var ((model, firmware, lot), d) in deltas)
        {
            var cmd = new NpgsqlBatchCommand("""
                INSERT INTO pf_cohort_stats AS s (model, firmware, lot, pumps, pump_days, alarms, critical_alarms, anomalies, updated_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
                ON CONFLICT (model, firmware, lot) DO UPDATE SET pumps = s.pumps + excluded.pumps, pump_days = s.pump_days + excluded.pump_days,
                    alarms = s.alarms + excluded.alarms, critical_alarms = s.critical_alarms + excluded.critical_alarms,
                    anomalies = s.anomalies + excluded.anomalies, updated_at = now()
                """);
            cmd.Parameters.Add(new() { Value = model });
            cmd.Parameters.Add(new() { Value = firmware });
            cmd.Parameters.Add(new() { Value = lot });
            cmd.Parameters.Add(new() { Value = d.Pumps });
            cmd.Parameters.Add(new() { Value = d.PumpDays });
            cmd.Parameters.Add(new() { Value = d.Alarms });
            cmd.Parameters.Add(new() { Value = d.CriticalAlarms });
            cmd.Parameters.Add(new() { Value = d.Anomalies });
            update.BatchCommands.Add(cmd);
        }

        // A cohort whose last pump left it has no row (as a re-count would leave it).
        var empty = new NpgsqlBatchCommand("""
            DELETE FROM pf_cohort_stats s USING unnest($1::text[], $2::text[], $3::text[]) AS k(model, firmware, lot)
             WHERE s.model = k.model AND s.firmware = k.firmware AND s.lot = k.lot AND s.pumps <= 0
            """);
        empty.Parameters.Add(new() { Value = deltas.Keys.Select(k => k.Item1).ToArray() });
        empty.Parameters.Add(new() { Value = deltas.Keys.Select(k => k.Item2).ToArray() });
        empty.Parameters.Add(new() { Value = deltas.Keys.Select(k => k.Item3).ToArray() });
        update.BatchCommands.Add(empty);
        await update.ExecuteNonQueryAsync(ct);
    }

    private static async Task<Dictionary<string, Member>> LoadAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string[] serials, CancellationToken ct)
    {
        var result = new Dictionary<string, Member>(StringComparer.Ordinal);
        await using var cmd = new NpgsqlCommand("""
            SELECT serial, model, firmware, lot, first_event_at, last_event_at, alarms, critical_alarms, anomalies, version,
                   indication, drug, phase, implanted_at, explanted_at, first_failures::text, phase_at, drug_at
              FROM pf_cohort_members WHERE serial = ANY($1) FOR UPDATE
            """, conn, tx);
        cmd.Parameters.Add(new() { Value = serials });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            var m = new Member
            {
                Serial = r.GetString(0),
                Model = r.IsDBNull(1) ? null : r.GetString(1),
                Firmware = r.IsDBNull(2) ? null : r.GetString(2),
                Lot = r.IsDBNull(3) ? null : r.GetString(3),
                First = r.IsDBNull(4) ? null : r.GetFieldValue<DateTimeOffset>(4),
                Last = r.IsDBNull(5) ? null : r.GetFieldValue<DateTimeOffset>(5),
                Alarms = r.GetInt32(6),
                CriticalAlarms = r.GetInt32(7),
                Anomalies = r.GetInt32(8),
                Version = r.GetInt64(9),
                Indication = r.IsDBNull(10) ? null : r.GetString(10),
                Drug = r.IsDBNull(11) ? null : r.GetString(11),
                Phase = r.IsDBNull(12) ? null : r.GetString(12),
                ImplantedAt = r.IsDBNull(13) ? null : r.GetFieldValue<DateTimeOffset>(13),
                ExplantedAt = r.IsDBNull(14) ? null : r.GetFieldValue<DateTimeOffset>(14),
                FirstFailures = JsonSerializer.Deserialize<Dictionary<string, DateTimeOffset>>(r.GetString(15)) ?? [],
                PhaseAt = r.IsDBNull(16) ? null : r.GetFieldValue<DateTimeOffset>(16),
                DrugAt = r.IsDBNull(17) ? null : r.GetFieldValue<DateTimeOffset>(17),
            };
            result[m.Serial] = m;
        }

        return result;
    }

    private sealed class Member
    {
        public string Serial { get; set; } = "";
        public string? Model { get; set; }
        public string? Firmware { get; set; }
        public string? Lot { get; set; }
        public DateTimeOffset? First { get; set; }
        public DateTimeOffset? Last { get; set; }
        public int Alarms { get; set; }
        public int CriticalAlarms { get; set; }
        public int Anomalies { get; set; }
        public long Version { get; set; }
        public string? Indication { get; set; }
        public string? Drug { get; set; }
        public DateTimeOffset? DrugAt { get; set; }
        public string? Phase { get; set; }
        public DateTimeOffset? PhaseAt { get; set; }
        public DateTimeOffset? ImplantedAt { get; set; }
        public DateTimeOffset? ExplantedAt { get; set; }
        public Dictionary<string, DateTimeOffset> FirstFailures { get; set; } = new(StringComparer.Ordinal);

        // Events are folded in stream order, which is not always event-time order (a gap filled late): the newest
        // phase by event time wins, the implant is the earliest "implanted" and the explant the latest "explanted".
        public void ApplyPhase(TherapyPhaseChanged x)
        {
            if (PhaseAt is not { } at || x.At >= at)
            {
                Phase = x.Phase;
                PhaseAt = x.At;
                Indication = x.Indication ?? Indication;
            }
            else if (Indication is null && x.Indication is not null)
            {
                Indication = x.Indication;
            }

            if (x.Phase == "implanted" && (ImplantedAt is not { } i || x.At < i))
            {
                ImplantedAt = x.At;
            }

            if (x.Phase == "explanted" && (ExplantedAt is not { } e || x.At > e))
            {
                ExplantedAt = x.At;
            }
        }

        public void FirstFailure(string key, DateTimeOffset at)
        {
            if (!FirstFailures.TryGetValue(key, out var first) || at < first)
            {
                FirstFailures[key] = at.ToUniversalTime();
            }
        }

        // Pumps that have not identified themselves yet belong to no cohort (empty model is skipped).
        public (string, string, string) Cohort => (Model ?? "", Firmware ?? "", Lot ?? "");

        // Pump-days: first to last trusted event time, as the cohort rate's denominator.
        public Contribution Share() => new(
            Cohort, 1, First is { } f && Last is { } l ? (l - f).TotalSeconds / 86400.0 : 0, Alarms, CriticalAlarms, Anomalies);
    }

    private readonly record struct Contribution(
        (string, string, string) Cohort, int Pumps, double PumpDays, int Alarms, int CriticalAlarms, int Anomalies)
    {
        public static Contribution operator +(Contribution a, Contribution b) => new(
            b.Cohort, a.Pumps + b.Pumps, a.PumpDays + b.PumpDays, a.Alarms + b.Alarms, a.CriticalAlarms + b.CriticalAlarms, a.Anomalies + b.Anomalies);

        public static Contribution operator -(Contribution a, Contribution b) => new(
            b.Cohort, a.Pumps - b.Pumps, a.PumpDays - b.PumpDays, a.Alarms - b.Alarms, a.CriticalAlarms - b.CriticalAlarms, a.Anomalies - b.Anomalies);
    }
}
