using System.Buffers;
using System.Collections.Frozen;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;
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
/// <param name="options">The page shape (<see cref="CohortProjectionOptions.LeanPages"/>).</param>
public sealed class CohortProjection(IOptions<CohortProjectionOptions> options) : IProjection
{
    /// <summary>The projection's name.</summary>
    public const string ProjectionName = "cohorts";

    // The events whose payload the fold reads beyond the event time; of every other device event only `at` is read.
    private static readonly FrozenSet<string> Folded = new[]
    {
        EventTypes.NameOf(typeof(TherapyPhaseChanged)), EventTypes.NameOf(typeof(PrescriptionSet)), EventTypes.NameOf(typeof(DeviceIdentified)),
        EventTypes.NameOf(typeof(AlarmRaised)), EventTypes.NameOf(typeof(AnomalyDetected)),
    }.ToFrozenSet(StringComparer.Ordinal);

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
        var lean = options.Value.LeanPages;
        var members = await LoadAsync(conn, tx, serials, lean, ct);
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
            if (lean && !Folded.Contains(stored.Type) && EventTypes.TypeOf(stored.Type) is not null)
            {
                // A device event the model takes only the time of (the bulk of a log: doses, levels, status), or a
                // platform event it ignores: the payload is not deserialised (most of a page's CPU otherwise).
                if (!stored.ClockSuspect && EventTypes.DeviceTypeNames.Contains(stored.Type))
                {
                    m.Span(EventTime(stored.Data));
                }

                continue;
            }

            var e = EventJson.Deserialize(stored.Type, stored.Data);
            if (e is DeviceEvent d && !stored.ClockSuspect)
            {
                m.Span(d.At);
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

        // One set-based statement per table per page (arrays unnested server-side), not one statement per pump or
        // cohort, and all of them in one round trip.
        await using var batch = new NpgsqlBatch(conn, tx);
        batch.BatchCommands.Add(MemberUpsert([.. changed.Select(serial => members[serial])]));
        if (deltas.Count > 0)
        {
            AddStatsCommands(batch, deltas);
        }

        await batch.ExecuteNonQueryAsync(ct);
    }

    // Serials are distinct (one entry per changed pump), as ON CONFLICT DO UPDATE needs.
    private static NpgsqlBatchCommand MemberUpsert(Member[] ms)
    {
        var cmd = new NpgsqlBatchCommand("""
            INSERT INTO pf_cohort_members (serial, model, firmware, lot, first_event_at, last_event_at, alarms, critical_alarms, anomalies, version,
                indication, drug, phase, implanted_at, explanted_at, first_failures, phase_at, drug_at)
            SELECT u.serial, u.model, u.firmware, u.lot, u.first_event_at, u.last_event_at, u.alarms, u.critical_alarms, u.anomalies, u.version,
                   u.indication, u.drug, u.phase, u.implanted_at, u.explanted_at, u.first_failures::jsonb, u.phase_at, u.drug_at
              FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::int[], $8::int[], $9::int[],
                          $10::bigint[], $11::text[], $12::text[], $13::text[], $14::timestamptz[], $15::timestamptz[], $16::text[],
                          $17::timestamptz[], $18::timestamptz[])
                   AS u(serial, model, firmware, lot, first_event_at, last_event_at, alarms, critical_alarms, anomalies, version,
                        indication, drug, phase, implanted_at, explanted_at, first_failures, phase_at, drug_at)
            ON CONFLICT (serial) DO UPDATE SET model = excluded.model, firmware = excluded.firmware, lot = excluded.lot,
                first_event_at = excluded.first_event_at, last_event_at = excluded.last_event_at, alarms = excluded.alarms,
                critical_alarms = excluded.critical_alarms, anomalies = excluded.anomalies, version = excluded.version,
                indication = excluded.indication, drug = excluded.drug, phase = excluded.phase, implanted_at = excluded.implanted_at,
                explanted_at = excluded.explanted_at, first_failures = excluded.first_failures, phase_at = excluded.phase_at, drug_at = excluded.drug_at
            """);
        cmd.Parameters.Add(Column(ms.Select(m => m.Serial).ToArray(), NpgsqlDbType.Text));
        cmd.Parameters.Add(Column(ms.Select(m => m.Model).ToArray(), NpgsqlDbType.Text));
        cmd.Parameters.Add(Column(ms.Select(m => m.Firmware).ToArray(), NpgsqlDbType.Text));
        cmd.Parameters.Add(Column(ms.Select(m => m.Lot).ToArray(), NpgsqlDbType.Text));
        cmd.Parameters.Add(Column(ms.Select(m => Utc(m.First)).ToArray(), NpgsqlDbType.TimestampTz));
        cmd.Parameters.Add(Column(ms.Select(m => Utc(m.Last)).ToArray(), NpgsqlDbType.TimestampTz));
        cmd.Parameters.Add(Column(ms.Select(m => m.Alarms).ToArray(), NpgsqlDbType.Integer));
        cmd.Parameters.Add(Column(ms.Select(m => m.CriticalAlarms).ToArray(), NpgsqlDbType.Integer));
        cmd.Parameters.Add(Column(ms.Select(m => m.Anomalies).ToArray(), NpgsqlDbType.Integer));
        cmd.Parameters.Add(Column(ms.Select(m => m.Version).ToArray(), NpgsqlDbType.Bigint));
        cmd.Parameters.Add(Column(ms.Select(m => m.Indication).ToArray(), NpgsqlDbType.Text));
        cmd.Parameters.Add(Column(ms.Select(m => m.Drug).ToArray(), NpgsqlDbType.Text));
        cmd.Parameters.Add(Column(ms.Select(m => m.Phase).ToArray(), NpgsqlDbType.Text));
        cmd.Parameters.Add(Column(ms.Select(m => Utc(m.ImplantedAt)).ToArray(), NpgsqlDbType.TimestampTz));
        cmd.Parameters.Add(Column(ms.Select(m => Utc(m.ExplantedAt)).ToArray(), NpgsqlDbType.TimestampTz));
        cmd.Parameters.Add(Column(ms.Select(m => JsonSerializer.Serialize(m.FirstFailures)).ToArray(), NpgsqlDbType.Text));
        cmd.Parameters.Add(Column(ms.Select(m => Utc(m.PhaseAt)).ToArray(), NpgsqlDbType.TimestampTz));
        cmd.Parameters.Add(Column(ms.Select(m => Utc(m.DrugAt)).ToArray(), NpgsqlDbType.TimestampTz));
        return cmd;
    }

    // Keys in sorted order (unnest keeps the array's order, WITH ORDINALITY makes it explicit): two partitions updating
    // the same cohorts lock them in the same order (no deadlock).
    private static void AddStatsCommands(NpgsqlBatch batch, SortedDictionary<(string, string, string), Contribution> deltas)
    {
        var models = deltas.Keys.Select(k => k.Item1).ToArray();
        var firmwares = deltas.Keys.Select(k => k.Item2).ToArray();
        var lots = deltas.Keys.Select(k => k.Item3).ToArray();
        var cmd = new NpgsqlBatchCommand("""
            INSERT INTO pf_cohort_stats AS s (model, firmware, lot, pumps, pump_days, alarms, critical_alarms, anomalies, updated_at)
            SELECT u.model, u.firmware, u.lot, u.pumps, u.pump_days, u.alarms, u.critical_alarms, u.anomalies, now()
              FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::float8[], $6::bigint[], $7::bigint[], $8::bigint[])
                   WITH ORDINALITY AS u(model, firmware, lot, pumps, pump_days, alarms, critical_alarms, anomalies, n)
             ORDER BY u.n
            ON CONFLICT (model, firmware, lot) DO UPDATE SET pumps = s.pumps + excluded.pumps, pump_days = s.pump_days + excluded.pump_days,
                alarms = s.alarms + excluded.alarms, critical_alarms = s.critical_alarms + excluded.critical_alarms,
                anomalies = s.anomalies + excluded.anomalies, updated_at = now()
            """);
        cmd.Parameters.Add(Column(models, NpgsqlDbType.Text));
        cmd.Parameters.Add(Column(firmwares, NpgsqlDbType.Text));
        cmd.Parameters.Add(Column(lots, NpgsqlDbType.Text));
        cmd.Parameters.Add(Column(deltas.Values.Select(d => d.Pumps).ToArray(), NpgsqlDbType.Integer));
        cmd.Parameters.Add(Column(deltas.Values.Select(d => d.PumpDays).ToArray(), NpgsqlDbType.Double));
        cmd.Parameters.Add(Column(deltas.Values.Select(d => (long)d.Alarms).ToArray(), NpgsqlDbType.Bigint));
        cmd.Parameters.Add(Column(deltas.Values.Select(d => (long)d.CriticalAlarms).ToArray(), NpgsqlDbType.Bigint));
        cmd.Parameters.Add(Column(deltas.Values.Select(d => (long)d.Anomalies).ToArray(), NpgsqlDbType.Bigint));
        batch.BatchCommands.Add(cmd);

        // A cohort whose last pump left it has no row (as a re-count would leave it).
        var empty = new NpgsqlBatchCommand("""
            DELETE FROM pf_cohort_stats s USING unnest($1::text[], $2::text[], $3::text[]) AS k(model, firmware, lot)
             WHERE s.model = k.model AND s.firmware = k.firmware AND s.lot = k.lot AND s.pumps <= 0
            """);
        empty.Parameters.Add(Column(models, NpgsqlDbType.Text));
        empty.Parameters.Add(Column(firmwares, NpgsqlDbType.Text));
        empty.Parameters.Add(Column(lots, NpgsqlDbType.Text));
        batch.BatchCommands.Add(empty);
    }

    // The payload's `at` as the serializer reads it (a top-level property; names case-insensitive, as with the web
    // defaults of EventJson; the last one if repeated), without materialising the event.
    internal static DateTimeOffset EventTime(string json)
    {
        var max = Encoding.UTF8.GetMaxByteCount(json.Length);
        var rented = max > 1024 ? ArrayPool<byte>.Shared.Rent(max) : null;
        try
        {
            Span<byte> buffer = rented is not null ? rented : stackalloc byte[1024];
            var reader = new Utf8JsonReader(buffer[..Encoding.UTF8.GetBytes(json, buffer)]);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                throw new JsonException("An event payload must be a JSON object.");
            }

            DateTimeOffset? at = null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isAt = reader.ValueIsEscaped
                    ? string.Equals(reader.GetString(), "at", StringComparison.OrdinalIgnoreCase)
                    : reader.ValueSpan.Length == 2 && (reader.ValueSpan[0] | 0x20) == 'a' && (reader.ValueSpan[1] | 0x20) == 't';
                if (!reader.Read())
                {
                    break;
                }

                if (isAt)
                {
                    at = reader.GetDateTimeOffset();
                }
                else
                {
                    reader.Skip();
                }
            }

            return reader.TokenType == JsonTokenType.EndObject && reader.CurrentDepth == 0 && at is { } found
                ? found
                : throw new JsonException("An event payload has no 'at' or is not a complete JSON object.");
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    private static NpgsqlParameter Column<T>(T[] values, NpgsqlDbType type) => new() { Value = values, NpgsqlDbType = NpgsqlDbType.Array | type };

    private static DateTime? Utc(DateTimeOffset? v) => v?.UtcDateTime;

    // Lean: one primary-key lookup per serial (a join on the unnested keys), no row locks: only the transaction that
    // holds the pump's log partition's checkpoint writes its row. `serial = ANY($1)` was planned as a scan of the
    // whole table (right after a rebuild the statistics say it is empty) comparing every row with every serial.
    private static async Task<Dictionary<string, Member>> LoadAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string[] serials, bool lean, CancellationToken ct)
    {
        var result = new Dictionary<string, Member>(StringComparer.Ordinal);
        await using var cmd = new NpgsqlCommand(lean
            ? """
              SELECT m.serial, m.model, m.firmware, m.lot, m.first_event_at, m.last_event_at, m.alarms, m.critical_alarms, m.anomalies, m.version,
                     m.indication, m.drug, m.phase, m.implanted_at, m.explanted_at, m.first_failures::text, m.phase_at, m.drug_at
                FROM unnest($1::text[]) AS k(serial) JOIN pf_cohort_members m ON m.serial = k.serial
              """
            : """
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

        // First to last trusted device-event time.
        public void Span(DateTimeOffset at)
        {
            First = First is { } f && f <= at ? f : at;
            Last = Last is { } l && l >= at ? l : at;
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
