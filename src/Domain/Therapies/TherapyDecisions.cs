using System.Globalization;
using System.Text.RegularExpressions;
using PumpFleet.Contracts;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;

namespace PumpFleet.Domain.Therapies;

/// <summary>What a therapy command decided: the events to append, or why it was refused.</summary>
public sealed record TherapyDecision(IReadOnlyList<TherapyEvent> Events, string? Error, string? Field, string? Reason)
{
    /// <summary>Refused for a bad argument (HTTP 400).</summary>
    public const string Invalid = "invalid";
    /// <summary>The therapy does not exist (HTTP 404).</summary>
    public const string NotFound = "not-found";
    /// <summary>The therapy's state does not allow it (HTTP 409).</summary>
    public const string Conflict = "conflict";

    internal static TherapyDecision Accept(params TherapyEvent[] events) => new(events, null, null, null);
    internal static TherapyDecision Bad(string field, string reason) => new([], Invalid, field, reason);
    internal static TherapyDecision Refuse(string reason) => new([], Conflict, null, reason);
}

/// <summary>
/// The rules of a therapy, pure: registered once; a trial (and its response and decision) before any implant; an
/// implant only after a decision to proceed; at most one pump implanted at a time; a replacement is the explant of the
/// current pump (reason <c>replacement</c>) and the implant of the new one in one step, so the history continues
/// across serials; any other explant, or a decision not to proceed, ends the therapy and nothing follows it. Times
/// are the clinical times given: never in the future (beyond the platform's 5-minute clock tolerance), never before
/// 2010, never earlier than the therapy's latest event.
/// </summary>
public static partial class TherapyDecisions
{
    /// <summary>The commands, as <see cref="TherapyCommand.Action"/> names them.</summary>
    public static readonly IReadOnlyList<string> Actions = ["open", "trial", "response", "decision", "implant", "replace", "explant"];

    private static readonly TimeSpan FutureTolerance = TimeSpan.FromMinutes(5);
    private static readonly DateTimeOffset Earliest = new(2010, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", RegexOptions.CultureInvariant)]
    private static partial Regex Identifier();

    /// <summary>Decides <paramref name="c"/> on <paramref name="s"/> at wall time <paramref name="now"/>.</summary>
    public static TherapyDecision Decide(TherapyState s, TherapyCommand c, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(s);
        ArgumentNullException.ThrowIfNull(c);
        if (TherapyIds.Check(s.Id) is { } idError)
        {
            return TherapyDecision.Bad("id", idError);
        }

        if (!Actions.Contains(c.Action))
        {
            return TherapyDecision.Bad("action", $"must be one of {string.Join(", ", Actions)}.");
        }

        if (string.IsNullOrWhiteSpace(c.By))
        {
            return TherapyDecision.Bad("by", "the signed-in user is required.");
        }

        if (c.Note is { Length: > 2000 })
        {
            return TherapyDecision.Bad("note", "must be at most 2000 characters.");
        }

        var at = (c.At ?? now).ToUniversalTime();
        if (at > now + FutureTolerance)
        {
            return TherapyDecision.Bad("at", string.Create(CultureInfo.InvariantCulture, $"{at:O} is in the future."));
        }

        if (at < Earliest)
        {
            return TherapyDecision.Bad("at", "must not be before 2010.");
        }

        if (c.Action == "open")
        {
            if (s.Exists)
            {
                return TherapyDecision.Refuse($"Therapy '{s.Id}' already exists.");
            }

            if (c.Indication is { } ind && !Vocabulary.Indications.Contains(ind))
            {
                return TherapyDecision.Bad("indication", $"must be one of {string.Join(", ", Vocabulary.Indications.Order(StringComparer.Ordinal))}.");
            }

            return TherapyDecision.Accept(new TherapyOpened { At = at, By = c.By, Note = c.Note, Indication = c.Indication });
        }

        if (!s.Exists)
        {
            return new TherapyDecision([], TherapyDecision.NotFound, null, $"No therapy '{s.Id}': register it first (POST /api/therapies).");
        }

        if (s.Ended)
        {
            return TherapyDecision.Refuse(string.Create(CultureInfo.InvariantCulture, $"Therapy '{s.Id}' ended at {s.EndedAt:O} ({s.Phase}): nothing can follow."));
        }

        if (s.LastAt is { } last && at < last)
        {
            return TherapyDecision.Refuse(string.Create(CultureInfo.InvariantCulture,
                $"'at' {at:O} is earlier than the therapy's latest event ({last:O}): a therapy's history is recorded in order."));
        }

        return c.Action switch
        {
            "trial" => Trial(s, c, at, now),
            "response" => Response(s, c, at),
            "decision" => Decision(s, c, at),
            "implant" => Implant(s, c, at),
            "replace" => Replace(s, c, at),
            _ => Explant(s, c, at),
        };
    }

    private static TherapyDecision Trial(TherapyState s, TherapyCommand c, DateTimeOffset at, DateTimeOffset now)
    {
        if (s.Pumps.Count > 0 || s.Proceed is not null)
        {
            return TherapyDecision.Refuse("A trial comes before the decision and the implant; this therapy is past that.");
        }

        if (c.TrialKind is not { } kind || !Vocabulary.TrialKinds.Contains(kind))
        {
            return TherapyDecision.Bad("kind", "must be single-dose, multi-dose (several doses without a pump) or continuous (an external pump).");
        }

        switch (kind)
        {
            case "single-dose" when c.Doses is not (null or 1):
                return TherapyDecision.Bad("doses", "a single-dose trial has 1 dose.");
            case "multi-dose" when c.Doses is not null and (< 2 or > 50):
                return TherapyDecision.Bad("doses", "a multi-dose trial has 2 to 50 doses.");
            case "continuous" when c.ExternalPump is null || !Identifier().IsMatch(c.ExternalPump):
                return TherapyDecision.Bad("externalPump", "a continuous trial names its external pump (letters, digits, '.', '_', '-'; at most 64).");
            case "continuous" when c.Doses is not null:
                return TherapyDecision.Bad("doses", "a continuous trial is not counted in doses.");
        }

        if (kind != "continuous" && c.ExternalPump is not null)
        {
            return TherapyDecision.Bad("externalPump", "only a continuous trial uses an external pump.");
        }

        if (c.Drug is { } drug && (drug.Length is 0 or > 100))
        {
            return TherapyDecision.Bad("drug", "must be 1 to 100 characters.");
        }

        if (c.EndedAt is { } end && (end < at || end > now + FutureTolerance))
        {
            return TherapyDecision.Bad("endedAt", "must be at or after the trial's start and not in the future.");
        }

        return TherapyDecision.Accept(new TherapyTrialRecorded
        {
            At = at, By = c.By, Note = c.Note, Kind = kind, Drug = c.Drug, Doses = kind == "single-dose" ? 1 : c.Doses,
            ExternalPump = c.ExternalPump, EndedAt = c.EndedAt?.ToUniversalTime(),
        });
    }

    private static TherapyDecision Response(TherapyState s, TherapyCommand c, DateTimeOffset at)
    {
        if (s.Trials == 0)
        {
            return TherapyDecision.Refuse("Record the trial before its response.");
        }

        if (s.Proceed is not null)
        {
            return TherapyDecision.Refuse("The decision was already made: the response belongs before it.");
        }

        if (c.PainBefore is not { } b || b is < 0 or > 10)
        {
            return TherapyDecision.Bad("painBefore", "is required: the pain score before the trial, 0 to 10 (NRS).");
        }

        if (c.PainAfter is not { } a || a is < 0 or > 10)
        {
            return TherapyDecision.Bad("painAfter", "is required: the pain score after the trial, 0 to 10 (NRS).");
        }

        return TherapyDecision.Accept(new TherapyResponseRecorded { At = at, By = c.By, Note = c.Note, PainBefore = b, PainAfter = a });
    }

    private static TherapyDecision Decision(TherapyState s, TherapyCommand c, DateTimeOffset at)
    {
        if (s.Proceed is not null)
        {
            return TherapyDecision.Refuse($"The decision was already made ({(s.Proceed.Value ? "proceed" : "do not proceed")}).");
        }

        if (s.Trials == 0 || !s.HasResponse)
        {
            return TherapyDecision.Refuse("The decision rests on the trial and its response: record both first.");
        }

        if (c.Proceed is not { } proceed)
        {
            return TherapyDecision.Bad("proceed", "is required: true (proceed to implant) or false (do not proceed).");
        }

        return TherapyDecision.Accept(new TherapyDecided { At = at, By = c.By, Note = c.Note, Proceed = proceed });
    }

    private static TherapyDecision Implant(TherapyState s, TherapyCommand c, DateTimeOffset at)
    {
        if (s.CurrentSerial is { } current)
        {
            return TherapyDecision.Refuse($"Pump {current} is implanted: one pump at a time (a new pump replaces it: POST …/replace).");
        }

        if (s.Proceed != true)
        {
            return TherapyDecision.Refuse("An implant follows a trial whose decision was to proceed: record the trial, its response and the decision first.");
        }

        return CheckSerial(s, c) ?? TherapyDecision.Accept(new PumpImplanted { At = at, By = c.By, Note = c.Note, Serial = c.Serial! });
    }

    private static TherapyDecision Replace(TherapyState s, TherapyCommand c, DateTimeOffset at)
    {
        if (s.CurrentSerial is not { } current)
        {
            return TherapyDecision.Refuse("No pump is implanted, so none can be replaced.");
        }

        return CheckSerial(s, c) ?? TherapyDecision.Accept(
            new PumpExplanted { At = at, By = c.By, Note = c.Note, Serial = current, Reason = "replacement" },
            new PumpImplanted { At = at, By = c.By, Note = c.Note, Serial = c.Serial! });
    }

    private static TherapyDecision Explant(TherapyState s, TherapyCommand c, DateTimeOffset at)
    {
        if (c.Reason is not { } reason || !Vocabulary.ExplantReasons.Contains(reason))
        {
            return TherapyDecision.Bad("reason", $"must be one of {string.Join(", ", Vocabulary.ExplantReasons.Where(r => r != "replacement").Order(StringComparer.Ordinal))}.");
        }

        if (reason == "replacement")
        {
            return TherapyDecision.Bad("reason", "a replacement is recorded with the new pump: POST /api/therapies/{id}/replace.");
        }

        if (s.CurrentSerial is not { } current)
        {
            return TherapyDecision.Refuse("No pump is implanted, so none can be explanted.");
        }

        if (c.Serial is { } serial && serial != current)
        {
            return TherapyDecision.Refuse($"Pump {serial} is not the implanted pump ({current}).");
        }

        return TherapyDecision.Accept(new PumpExplanted { At = at, By = c.By, Note = c.Note, Serial = current, Reason = reason });
    }

    private static TherapyDecision? CheckSerial(TherapyState s, TherapyCommand c)
    {
        if (c.Serial is not { } serial || !Identifier().IsMatch(serial))
        {
            return TherapyDecision.Bad("serial", "is required: the pump's serial (letters, digits, '.', '_', '-'; at most 64).");
        }

        if (s.Pumps.Any(p => p.Serial == serial))
        {
            return TherapyDecision.Refuse($"Pump {serial} was already implanted in this therapy: an explanted pump is not implanted again.");
        }

        return null;
    }
}
