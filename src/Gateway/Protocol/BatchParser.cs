using System.Collections.Frozen;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using PumpFleet.Contracts;
using PumpFleet.Contracts.Events;

namespace PumpFleet.Gateway.Protocol;

/// <summary>
/// Parses and validates an event batch of hub protocol v1 into the Contracts records by hand, so every failure
/// gets a precise code and a reason naming the field, the value and what was expected.
/// </summary>
public static partial class BatchParser
{
    /// <summary>Largest accepted payload: 256 KiB.</summary>
    public const int MaxPayloadBytes = 256 * 1024;

    /// <summary>Most events in one batch.</summary>
    public const int MaxEvents = 500;

    private static readonly JsonDocumentOptions DocumentOptions = new() { MaxDepth = 16 };

    /// <summary>Parses <paramref name="payload"/>; never throws for bad input.</summary>
    public static ParseResult Parse(ReadOnlyMemory<byte> payload)
    {
        using var activity = Ingest.GatewayTracing.Source.StartActivity("parse");
        if (payload.Length > MaxPayloadBytes)
        {
            return ParseResult.Fail(RejectCodes.PayloadTooLarge,
                $"The payload is {payload.Length} bytes; the limit is {MaxPayloadBytes} bytes (256 KiB).");
        }

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(payload, DocumentOptions);
        }
        catch (JsonException e)
        {
            return ParseResult.Fail(RejectCodes.InvalidJson, $"The payload is not valid JSON: {e.Message}");
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return ParseResult.Fail(RejectCodes.InvalidJson, $"The payload must be a JSON object, not {Describe(root)}.");
            }

            if (!root.TryGetProperty("v", out var v))
            {
                return ParseResult.Fail(RejectCodes.UnsupportedVersion, "Field 'v' is missing; expected the protocol version 1.");
            }

            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out var version) || version != 1)
            {
                return ParseResult.Fail(RejectCodes.UnsupportedVersion, $"Field 'v' is {v.GetRawText()}; expected 1.");
            }

            if (!root.TryGetProperty("events", out var events) || events.ValueKind != JsonValueKind.Array)
            {
                return ParseResult.Fail(RejectCodes.MissingEvents,
                    events.ValueKind == JsonValueKind.Undefined
                        ? "Field 'events' is missing; expected an array of 1 to 500 events."
                        : $"Field 'events' is {Describe(events)}; expected an array of 1 to 500 events.");
            }

            var count = events.GetArrayLength();
            if (count == 0)
            {
                return ParseResult.Fail(RejectCodes.EmptyEvents, "Field 'events' is empty; expected 1 to 500 events.");
            }

            if (count > MaxEvents)
            {
                return ParseResult.Fail(RejectCodes.TooManyEvents, $"Field 'events' holds {count} events; the limit is {MaxEvents}.");
            }

            DeviceInfo? device = null;
            if (root.TryGetProperty("device", out var deviceElement) && deviceElement.ValueKind != JsonValueKind.Null)
            {
                try
                {
                    device = ParseDevice(new Fields(deviceElement, "device"));
                }
                catch (InvalidFieldException e)
                {
                    return ParseResult.Fail(RejectCodes.InvalidDevice, e.Message);
                }
            }

            var valid = new List<DeviceEvent>(count);
            var invalid = new List<InvalidEvent>();
            var raw = new Dictionary<long, string>(count);
            long lastSeq = 0;
            var index = 0;
            foreach (var element in events.EnumerateArray())
            {
                var text = element.GetRawText();
                var (seq, evt, problem) = ParseEvent(element, index++, lastSeq);
                if (problem is not null)
                {
                    invalid.Add(new InvalidEvent(seq, problem.Code, problem.Reason, text));
                    continue;
                }

                valid.Add(evt!);
                raw[evt!.Seq] = text;
                lastSeq = evt.Seq;
            }

            return new ParseResult(new ParsedBatch(device, valid, invalid) { RawBySeq = raw }, null);
        }
    }

    private static (long? Seq, DeviceEvent? Event, Problem? Problem) ParseEvent(JsonElement e, int index, long lastSeq)
    {
        if (e.ValueKind != JsonValueKind.Object)
        {
            return (null, null, new Problem(null, RejectCodes.InvalidEvent, $"events[{index}] is {Describe(e)}; expected an event object."));
        }

        long? seq = null;
        if (e.TryGetProperty("seq", out var seqElement) && seqElement.ValueKind == JsonValueKind.Number && seqElement.TryGetInt64(out var s))
        {
            seq = s;
        }

        var path = seq is null ? $"events[{index}]" : $"event seq {seq}";
        try
        {
            var f = new Fields(e, path);
            if (seq is null)
            {
                _ = f.Int64("seq"); // throws with the precise reason
            }

            if (seq < 1)
            {
                throw new InvalidFieldException(RejectCodes.InvalidSeq, $"{path}: field 'seq' is {seq}; expected an integer ≥ 1.");
            }

            if (seq <= lastSeq)
            {
                throw new InvalidFieldException(RejectCodes.SeqNotIncreasing,
                    $"{path}: seq {seq} is not greater than the previous event's seq {lastSeq} in this batch; seq must strictly increase.");
            }

            var type = f.String("type");
            var at = f.Time("at");
            DeviceEvent evt = type switch
            {
                "therapy.phase" => new TherapyPhaseChanged
                {
                    Seq = seq!.Value, At = at, Phase = f.Enum("phase", Vocabulary.Phases),
                    Indication = f.OptionalEnum("indication", Vocabulary.Indications),
                },
                "prescription.set" => ParsePrescription(f, seq!.Value, at),
                "dose.delivered" => new DoseDelivered
                {
                    Seq = seq!.Value, At = at, From = f.Time("from"), VolumeMl = f.Volume("volumeMl"),
                    Kind = f.Enum("kind", Vocabulary.DoseKinds),
                },
                "bolus.requested" => new BolusRequested
                {
                    Seq = seq!.Value, At = at, Granted = f.Bool("granted"),
                    Reason = f.OptionalEnum("reason", Vocabulary.BolusRefusals),
                },
                "reservoir.level" => new ReservoirLevelReported
                {
                    Seq = seq!.Value, At = at, VolumeMl = f.Volume("volumeMl"), Source = f.Enum("source", Vocabulary.LevelSources),
                },
                "refill" => new RefillPerformed
                {
                    Seq = seq!.Value, At = at, ExpectedResidualMl = f.Volume("expectedResidualMl"),
                    AspiratedResidualMl = f.Volume("aspiratedResidualMl"), AddedMl = f.Volume("addedMl"),
                    Drug = f.String("drug"), Concentration = ParseConcentration(f.Object("concentration")),
                },
                "delivery.state" => new DeliveryStateChanged
                {
                    Seq = seq!.Value, At = at, State = f.Enum("state", Vocabulary.DeliveryStates),
                    Reason = f.OptionalEnum("reason", Vocabulary.StopReasons),
                },
                "alarm.raised" => new AlarmRaised
                {
                    Seq = seq!.Value, At = at, Code = f.Enum("code", Vocabulary.AlarmCodes),
                    Severity = f.Enum("severity", Vocabulary.AlarmSeverities),
                },
                "alarm.cleared" => new AlarmCleared { Seq = seq!.Value, At = at, Code = f.Enum("code", Vocabulary.AlarmCodes) },
                "status" => new StatusReported
                {
                    Seq = seq!.Value, At = at, BatteryPct = f.OptionalNumber("batteryPct", 0, 100),
                    BatteryV = f.OptionalNumber("batteryV", 0, null), TempC = f.OptionalNumber("tempC", null, null),
                    Motor = f.OptionalEnum("motor", Vocabulary.MotorStates),
                },
                "pain.reported" => new PainReported { Seq = seq!.Value, At = at, Score = f.Int32("score", 0, 10) },
                _ => throw new InvalidFieldException(RejectCodes.UnknownType,
                    $"{path}: type '{type}' is not a v1 event type; expected one of {string.Join(", ", KnownTypes)}."),
            };
            return (seq, evt, null);
        }
        catch (InvalidFieldException x)
        {
            return (seq, null, new Problem(seq, x.Code, x.Message));
        }
    }

    private static readonly string[] KnownTypes =
    [
        "therapy.phase", "prescription.set", "dose.delivered", "bolus.requested", "reservoir.level", "refill",
        "delivery.state", "alarm.raised", "alarm.cleared", "status", "pain.reported",
    ];

    private static PrescriptionSet ParsePrescription(Fields f, long seq, DateTimeOffset at)
    {
        var mode = f.Enum("mode", Vocabulary.PrescriptionModes);
        double? rate = mode == "continuous" ? f.NonNegative("rateMlPerDay") : f.OptionalNumber("rateMlPerDay", 0, null);
        List<FlexStep>? schedule = null;
        if (mode == "flex" || f.Has("schedule"))
        {
            var items = f.Array("schedule");
            if (mode == "flex" && items.Count == 0)
            {
                throw new InvalidFieldException(RejectCodes.InvalidValue, $"{f.Path}: field 'schedule' is empty; flex mode needs at least one step.");
            }

            schedule = [];
            for (var i = 0; i < items.Count; i++)
            {
                var step = new Fields(items[i], $"{f.Path} schedule[{i}]", requireObject: true);
                schedule.Add(new FlexStep { Start = step.Clock("start"), RateMlPerDay = step.NonNegative("rateMlPerDay") });
            }
        }

        BolusSettings? bolus = null;
        if (f.Has("bolus"))
        {
            var b = f.Object("bolus");
            bolus = new BolusSettings
            {
                DoseMl = b.Volume("doseMl"), LockoutMin = b.Int32("lockoutMin", 0, null), MaxPerDay = b.Int32("maxPerDay", 0, null),
            };
        }

        return new PrescriptionSet
        {
            Seq = seq, At = at, Drug = f.String("drug"), Concentration = ParseConcentration(f.Object("concentration")),
            Mode = mode, RateMlPerDay = rate, Schedule = schedule, Bolus = bolus,
            LowReservoirAlarmMl = f.Has("lowReservoirAlarmMl") ? f.Volume("lowReservoirAlarmMl") : null,
        };
    }

    private static Concentration ParseConcentration(Fields f)
    {
        var value = f.Number("value");
        if (value <= 0)
        {
            throw new InvalidFieldException(RejectCodes.InvalidValue,
                $"{f.Path}: field 'value' is {Num(value)}; expected a concentration > 0.");
        }

        return new Concentration { Value = value, Unit = f.String("unit") };
    }

    private static DeviceInfo ParseDevice(Fields f)
    {
        var capacity = f.Number("reservoirCapacityMl");
        if (capacity <= 0)
        {
            throw new InvalidFieldException(RejectCodes.InvalidDevice,
                $"device: field 'reservoirCapacityMl' is {Num(capacity)}; expected a capacity > 0 mL.");
        }

        return new DeviceInfo { Model = f.String("model"), Firmware = f.String("firmware"), Lot = f.String("lot"), ReservoirCapacityMl = capacity };
    }

    private static string Num(double d) => d.ToString("R", CultureInfo.InvariantCulture);

    private static string Describe(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => $"the string {Truncate(e.GetRawText())}",
        JsonValueKind.Number => $"the number {Truncate(e.GetRawText())}",
        JsonValueKind.True or JsonValueKind.False => $"the boolean {e.GetRawText()}",
        JsonValueKind.Null => "null",
        _ => "missing",
    };

    private static string Truncate(string s) => s.Length <= 80 ? s : s[..80] + "…";

    [GeneratedRegex(@"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$", RegexOptions.CultureInvariant)]
    private static partial Regex Rfc3339();

    [GeneratedRegex(@"^([01]\d|2[0-3]):[0-5]\d$", RegexOptions.CultureInvariant)]
    private static partial Regex ClockTime();

    /// <summary>Field access on one JSON object that throws <see cref="InvalidFieldException"/> with a precise reason.</summary>
    private readonly struct Fields
    {
        private readonly JsonElement _obj;

        public Fields(JsonElement obj, string path, bool requireObject = false)
        {
            if (obj.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidFieldException(requireObject ? RejectCodes.InvalidField : RejectCodes.InvalidField,
                    $"{path} is {Describe(obj)}; expected an object.");
            }

            _obj = obj;
            Path = path;
        }

        public string Path { get; }

        public bool Has(string name) => _obj.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null;

        private JsonElement Required(string name, JsonValueKind kind, string expected)
        {
            if (!_obj.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
            {
                throw new InvalidFieldException(RejectCodes.MissingField, $"{Path}: required field '{name}' is missing; expected {expected}.");
            }

            if (v.ValueKind != kind && !(kind == JsonValueKind.True && v.ValueKind == JsonValueKind.False))
            {
                throw new InvalidFieldException(RejectCodes.InvalidField, $"{Path}: field '{name}' is {Describe(v)}; expected {expected}.");
            }

            return v;
        }

        public string String(string name)
        {
            var s = Required(name, JsonValueKind.String, "a non-empty string").GetString()!;
            return s.Length == 0
                ? throw new InvalidFieldException(RejectCodes.InvalidValue, $"{Path}: field '{name}' is an empty string; expected a non-empty string.")
                : s;
        }

        public bool Bool(string name) => Required(name, JsonValueKind.True, "true or false").GetBoolean();

        public double Number(string name) => Required(name, JsonValueKind.Number, "a number").GetDouble();

        public double NonNegative(string name)
        {
            var d = Number(name);
            return d < 0
                ? throw new InvalidFieldException(RejectCodes.InvalidValue, $"{Path}: field '{name}' is {Num(d)}; expected a number ≥ 0.")
                : d;
        }

        public double Volume(string name)
        {
            var d = Number(name);
            return d < 0
                ? throw new InvalidFieldException(RejectCodes.NegativeVolume, $"{Path}: field '{name}' is {Num(d)} mL; a volume must be ≥ 0.")
                : d;
        }

        public double? OptionalNumber(string name, double? min, double? max)
        {
            if (!Has(name))
            {
                return null;
            }

            var d = Number(name);
            if ((min is { } lo && d < lo) || (max is { } hi && d > hi))
            {
                var range = (min, max) switch
                {
                    ({ } a, { } b) => $"a number from {Num(a)} to {Num(b)}",
                    ({ } a, null) => $"a number ≥ {Num(a)}",
                    (null, { } b) => $"a number ≤ {Num(b)}",
                    _ => "a number",
                };
                throw new InvalidFieldException(RejectCodes.InvalidValue, $"{Path}: field '{name}' is {Num(d)}; expected {range}.");
            }

            return d;
        }

        public long Int64(string name)
        {
            var v = Required(name, JsonValueKind.Number, "an integer");
            return v.TryGetInt64(out var l)
                ? l
                : throw new InvalidFieldException(RejectCodes.InvalidField, $"{Path}: field '{name}' is {v.GetRawText()}; expected an integer.");
        }

        public int Int32(string name, int? min, int? max)
        {
            var v = Required(name, JsonValueKind.Number, "an integer");
            if (!v.TryGetInt32(out var i))
            {
                throw new InvalidFieldException(RejectCodes.InvalidField, $"{Path}: field '{name}' is {v.GetRawText()}; expected an integer.");
            }

            if ((min is { } lo && i < lo) || (max is { } hi && i > hi))
            {
                var range = max is null ? $"an integer ≥ {min}" : $"an integer from {min} to {max}";
                throw new InvalidFieldException(RejectCodes.InvalidValue, $"{Path}: field '{name}' is {i}; expected {range}.");
            }

            return i;
        }

        public DateTimeOffset Time(string name)
        {
            var s = Required(name, JsonValueKind.String, "an RFC 3339 timestamp such as 2026-11-24T03:00:00Z").GetString()!;
            if (!Rfc3339().IsMatch(s) ||
                !DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AllowWhiteSpaces | DateTimeStyles.AssumeUniversal, out var t))
            {
                throw new InvalidFieldException(RejectCodes.InvalidTimestamp,
                    $"{Path}: field '{name}' is \"{Truncate(s)}\"; expected an RFC 3339 timestamp such as 2026-11-24T03:00:00Z.");
            }

            return t.ToUniversalTime();
        }

        public string Clock(string name)
        {
            var s = String(name);
            return ClockTime().IsMatch(s)
                ? s
                : throw new InvalidFieldException(RejectCodes.InvalidValue, $"{Path}: field '{name}' is \"{Truncate(s)}\"; expected a time of day HH:MM.");
        }

        public string Enum(string name, FrozenSet<string> allowed)
        {
            var s = Required(name, JsonValueKind.String, "one of " + string.Join(", ", allowed.Order(StringComparer.Ordinal))).GetString()!;
            return allowed.Contains(s)
                ? s
                : throw new InvalidFieldException(RejectCodes.InvalidValue,
                    $"{Path}: field '{name}' is \"{Truncate(s)}\"; expected one of {string.Join(", ", allowed.Order(StringComparer.Ordinal))}.");
        }

        public string? OptionalEnum(string name, FrozenSet<string> allowed) => Has(name) ? Enum(name, allowed) : null;

        public Fields Object(string name) => new(Required(name, JsonValueKind.Object, "an object"), $"{Path}.{name}");

        public List<JsonElement> Array(string name) => [.. Required(name, JsonValueKind.Array, "an array").EnumerateArray()];
    }

    /// <summary>Carries a validation failure out of the field readers; never leaves the parser.</summary>
    private sealed class InvalidFieldException(string code, string message) : Exception(message)
    {
        public string Code { get; } = code;
    }
}
