using System.Collections.Frozen;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using PumpFleet.Contracts;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Grains;

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

    /// <summary>Longest free-text value (drug, unit, model, firmware, lot), in UTF-16 code units.</summary>
    public const int MaxStringLength = 128;

    /// <summary>Most steps in a flex schedule.</summary>
    public const int MaxScheduleSteps = 48;

    /// <summary>Largest volume in any field, mL: far above any implantable reservoir, far below overflow.</summary>
    public const double MaxVolumeMl = 1000;

    // Duplicate keys are refused: which of two values a reader takes differs between JSON implementations, so
    // the hub and the platform could disagree about what was sent (RFC 8259 §4, I-JSON RFC 7493 §2.3).
    private static readonly JsonDocumentOptions DocumentOptions = new() { MaxDepth = 16, AllowDuplicateProperties = false };
    private static readonly JsonDocumentOptions LenientOptions = new() { MaxDepth = 16 };

    /// <summary>
    /// Parses <paramref name="payload"/>; never throws. The parser is pure, so any failure in it is deterministic:
    /// whatever escapes the field readers becomes a reject of the message, never a retry.
    /// </summary>
    public static ParseResult Parse(ReadOnlyMemory<byte> payload)
    {
        using var activity = Ingest.GatewayTracing.Source.StartActivity("parse");
        try
        {
            return ParseCore(payload);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return ParseResult.Fail(RejectCodes.InvalidJson, $"The payload cannot be read as a v1 batch ({e.GetType().Name}: {Truncate(e.Message)}).");
        }
    }

    private static ParseResult ParseCore(ReadOnlyMemory<byte> payload)
    {
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
        catch (InvalidOperationException)
        {
            // Checking for duplicate keys reads every property name: a name with a lone surrogate escape fails here.
            return ParseResult.Fail(RejectCodes.InvalidUnicode,
                "A property name in the payload is not valid Unicode (a lone UTF-16 surrogate escape such as \\udc00); expected valid UTF-16 text.");
        }
        catch (JsonException e)
        {
            return IsDuplicateKeyOnly(payload)
                ? ParseResult.Fail(RejectCodes.DuplicateKey, $"The payload has a duplicate key: {e.Message}")
                : ParseResult.Fail(RejectCodes.InvalidJson, $"The payload is not valid JSON: {e.Message}");
        }

        using (doc)
        {
            try
            {
                CheckText(doc.RootElement, "the payload", skipEvents: true);
            }
            catch (InvalidFieldException e)
            {
                return ParseResult.Fail(e.Code, e.Message);
            }

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
                return ParseResult.Fail(RejectCodes.UnsupportedVersion, $"Field 'v' is {v.SafeRaw()}; expected 1.");
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
            // Where each valid event is in `events`: its text is found again only if the grain refuses it (RawEvents).
            var validIndexes = new int[count];
            long lastSeq = 0;
            var index = 0;
            foreach (var element in events.EnumerateArray())
            {
                var at = index++;
                var (seq, evt, problem) = ParseEvent(element, at, lastSeq);
                if (problem is not null)
                {
                    invalid.Add(new InvalidEvent(seq, problem.Code, problem.Reason, element.SafeRaw())
                    {
                        RawBytes = System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(element).ToArray(),
                    });
                    continue;
                }

                validIndexes[valid.Count] = at;
                valid.Add(evt!);
                lastSeq = evt!.Seq;
            }

            var seqs = new long[valid.Count];
            for (var i = 0; i < seqs.Length; i++)
            {
                seqs[i] = valid[i].Seq;
            }

            return new ParseResult(new ParsedBatch(device, valid, invalid) { RawBySeq = new RawEvents(payload, seqs, validIndexes) }, null);
        }
    }

    /// <summary>
    /// The JSON text of element <paramref name="index"/> of the <c>events</c> of a payload <see cref="Parse"/> accepted as a
    /// batch, or null if it has none (the payload is read again: this is for the rare event the grain refuses).
    /// </summary>
    internal static string? RawEventText(ReadOnlyMemory<byte> payload, int index)
    {
        using var doc = JsonDocument.Parse(payload, LenientOptions);
        return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("events", out var events) &&
            events.ValueKind == JsonValueKind.Array && index < events.GetArrayLength()
                ? events[index].SafeRaw()
                : null;
    }

    /// <summary>
    /// The element's JSON text. The reader does not validate UTF-8 inside strings (only transcoding does), so the
    /// bytes are decoded leniently: invalid sequences become U+FFFD instead of an exception.
    /// </summary>
    private static string SafeRaw(this JsonElement e) =>
        System.Text.Encoding.UTF8.GetString(System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(e));

    private static bool IsDuplicateKeyOnly(ReadOnlyMemory<byte> payload)
    {
        try
        {
            using var lenient = JsonDocument.Parse(payload, LenientOptions);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>
    /// Every property name and string value must be valid UTF-16 (no lone surrogate escape such as \udc00) and free
    /// of control characters (PostgreSQL's jsonb refuses \u0000). Checked up front, so no field reader can throw
    /// on it later and an object with such a name cannot be searched at all. Text without escapes is checked on its
    /// UTF-8 bytes as received, without making a string of it; paths are made only for the error's reason (this check
    /// made a string for every name, every value and every path, a fifth of the gateway's garbage, issue 15).
    /// </summary>
    private static void CheckText(JsonElement e, string path, bool skipEvents = false)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                // Every name first (as one pass before any value), so a bad name is reported before a bad value.
                foreach (var p in e.EnumerateObject())
                {
                    if (!IsPlainText(System.Runtime.InteropServices.JsonMarshal.GetRawUtf8PropertyName(p)))
                    {
                        CheckName(p, path);
                    }
                }

                foreach (var p in e.EnumerateObject())
                {
                    if (skipEvents && p.NameEquals("events"u8))
                    {
                        continue;
                    }

                    CheckValue(p.Value, path, p, -1);
                }

                break;
            case JsonValueKind.Array:
                var i = 0;
                foreach (var item in e.EnumerateArray())
                {
                    CheckValue(item, path, null, i++);
                }

                break;
            case JsonValueKind.String:
                CheckString(e, path, null, -1);
                break;
        }
    }

    // A member of an object (name) or of an array (index): its path is made only to recurse or to report.
    private static void CheckValue(JsonElement e, string parent, JsonProperty? member, int index)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object or JsonValueKind.Array:
                CheckText(e, ChildPath(parent, member, index));
                break;
            case JsonValueKind.String:
                CheckString(e, parent, member, index);
                break;
        }
    }

    // The names were checked before any value, so reading one here cannot fail.
    private static string ChildPath(string parent, JsonProperty? member, int index) =>
        member is { } m ? $"{parent}.{m.Name}" : index >= 0 ? $"{parent}[{index}]" : parent;

    private static void CheckString(JsonElement e, string parent, JsonProperty? member, int index)
    {
        var raw = System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(e);
        if (raw.Length < 2 || !IsPlainText(raw[1..^1]))
        {
            _ = ReadText(e, ChildPath(parent, member, index));
        }
    }

    private static void CheckName(JsonProperty p, string path)
    {
        string name;
        try
        {
            name = p.Name;
        }
        catch (InvalidOperationException)
        {
            throw new InvalidFieldException(RejectCodes.InvalidUnicode,
                $"{path} has a property name that is not valid Unicode (a lone UTF-16 surrogate escape).");
        }

        CheckControl(name, $"{path}: a property name");
    }

    /// <summary>
    /// True when these JSON string bytes (between the quotes) hold no escape and are valid UTF-8 without a control
    /// character: then the string they decode to is what <see cref="ReadText"/> accepts. Anything else (escapes
    /// included, which are legal) is left to <see cref="ReadText"/>, which decodes and says what is wrong.
    /// </summary>
    private static bool IsPlainText(ReadOnlySpan<byte> utf8)
    {
        for (var i = 0; i < utf8.Length; i++)
        {
            var b = utf8[i];
            // C0 controls and DEL; backslash starts an escape; 0xC2 0x80–0x9F is a C1 control (U+0080–U+009F).
            if (b < 0x20 || b == 0x7F || b == (byte)'\\' || (b == 0xC2 && i + 1 < utf8.Length && utf8[i + 1] is >= 0x80 and <= 0x9F))
            {
                return false;
            }
        }

        return System.Text.Unicode.Utf8.IsValid(utf8);
    }

    /// <summary>A string value that is valid UTF-16 without control characters.</summary>
    private static string ReadText(JsonElement e, string path, string? field = null)
    {
        string s;
        try
        {
            s = e.GetString()!;
        }
        catch (InvalidOperationException)
        {
            throw new InvalidFieldException(RejectCodes.InvalidUnicode,
                $"{FieldPath(path, field)} is {Truncate(e.SafeRaw())}, which is not valid Unicode (invalid UTF-8 or a lone UTF-16 surrogate escape); expected valid Unicode text.");
        }

        CheckControl(s, path, field);
        return s;
    }

    // "event seq 7: field 'drug'": made only for a reason.
    private static string FieldPath(string path, string? field) => field is null ? path : $"{path}: field '{field}'";

    private static void CheckControl(string s, string path, string? field = null)
    {
        foreach (var c in s)
        {
            if (char.IsControl(c))
            {
                throw new InvalidFieldException(RejectCodes.InvalidUnicode,
                    $"{FieldPath(path, field)} contains the control character U+{(int)c:X4}; text fields may not contain control characters.");
            }
        }
    }

    private static (long? Seq, DeviceEvent? Event, Problem? Problem) ParseEvent(JsonElement e, int index, long lastSeq)
    {
        if (e.ValueKind != JsonValueKind.Object)
        {
            return (null, null, new Problem(null, RejectCodes.InvalidEvent, $"events[{index}] is {Describe(e)}; expected an event object."));
        }

        long? seq = null;
        try
        {
            if (e.TryGetProperty("seq", out var seqElement) && seqElement.ValueKind == JsonValueKind.Number && seqElement.TryGetInt64(out var s))
            {
                seq = s;
            }
        }
        catch (InvalidOperationException)
        {
            // A property name is not valid Unicode, so the object cannot be searched: CheckText below says so.
        }

        var path = seq is null ? $"events[{index}]" : $"event seq {seq}";
        try
        {
            CheckText(e, path);
            var f = new Fields(e, path);
            if (seq is null)
            {
                _ = f.Seq("seq"); // throws with the precise reason
            }

            if (seq < 1)
            {
                throw new InvalidFieldException(RejectCodes.InvalidSeq, $"{path}: field 'seq' is {seq}; expected an integer ≥ 1.");
            }

            if (seq > RejectionCodes.MaxSeq)
            {
                throw new InvalidFieldException(RejectCodes.SeqOutOfRange,
                    $"{path}: field 'seq' is {seq}; the largest seq is 2^53 − 1 ({RejectionCodes.MaxSeq}).");
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
                    BatteryV = f.OptionalNumber("batteryV", 0, 100), TempC = f.OptionalNumber("tempC", -100, 200),
                    Motor = f.OptionalEnum("motor", Vocabulary.MotorStates),
                },
                "pain.reported" => new PainReported { Seq = seq!.Value, At = at, Score = f.Int32("score", 0, 10) },
                "events.lost" => new EventsLost
                {
                    Seq = seq!.Value, At = at, FromSeq = f.Seq("fromSeq"), ToSeq = f.Seq("toSeq"),
                    Reason = f.Enum("reason", Vocabulary.LossReasons),
                },
                _ => throw new InvalidFieldException(RejectCodes.UnknownType,
                    $"{path}: type '{type}' is not a v1 event type; expected one of {string.Join(", ", KnownTypes)}."),
            };
            return (seq, evt, null);
        }
        catch (InvalidFieldException x)
        {
            return (seq, null, new Problem(seq, x.Code, x.Message));
        }
        catch (Exception x) when (x is InvalidOperationException or FormatException or ArgumentException or OverflowException)
        {
            // A reader failure the checks above did not foresee: still this event's fault, still deterministic.
            return (seq, null, new Problem(seq, RejectCodes.InvalidEvent, $"{path} cannot be read ({x.GetType().Name}: {Truncate(x.Message)})."));
        }
    }

    private static readonly string[] KnownTypes =
    [
        "therapy.phase", "prescription.set", "dose.delivered", "bolus.requested", "reservoir.level", "refill",
        "delivery.state", "alarm.raised", "alarm.cleared", "status", "pain.reported", "events.lost",
    ];

    private static PrescriptionSet ParsePrescription(Fields f, long seq, DateTimeOffset at)
    {
        var mode = f.Enum("mode", Vocabulary.PrescriptionModes);
        double? rate = mode == "continuous" ? f.Rate("rateMlPerDay") : f.OptionalNumber("rateMlPerDay", 0, MaxRateMlPerDay);
        List<FlexStep>? schedule = null;
        if (mode == "flex" || f.Has("schedule"))
        {
            var items = f.Array("schedule");
            if (mode == "flex" && items.Count == 0)
            {
                throw new InvalidFieldException(RejectCodes.InvalidValue, $"{f.Path}: field 'schedule' is empty; flex mode needs at least one step.");
            }

            if (items.Count > MaxScheduleSteps)
            {
                throw new InvalidFieldException(RejectCodes.InvalidValue,
                    $"{f.Path}: field 'schedule' has {items.Count} steps; the limit is {MaxScheduleSteps}.");
            }

            schedule = [];
            for (var i = 0; i < items.Count; i++)
            {
                var step = new Fields(items[i], $"{f.Path} schedule[{i}]", requireObject: true);
                schedule.Add(new FlexStep { Start = step.Clock("start"), RateMlPerDay = step.Rate("rateMlPerDay") });
            }
        }

        BolusSettings? bolus = null;
        if (f.Has("bolus"))
        {
            var b = f.Object("bolus");
            bolus = new BolusSettings
            {
                DoseMl = b.Volume("doseMl"), LockoutMin = b.Int32("lockoutMin", 0, 7 * 24 * 60), MaxPerDay = b.Int32("maxPerDay", 0, 1000),
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
        if (value <= 0 || value > MaxConcentration)
        {
            throw new InvalidFieldException(RejectCodes.InvalidValue,
                $"{f.Path}: field 'value' is {Num(value)}; expected a concentration > 0 and ≤ {Num(MaxConcentration)}.");
        }

        return new Concentration { Value = value, Unit = f.String("unit") };
    }

    private static DeviceInfo ParseDevice(Fields f)
    {
        var capacity = f.Number("reservoirCapacityMl");
        if (capacity <= 0 || capacity > MaxVolumeMl)
        {
            throw new InvalidFieldException(RejectCodes.InvalidDevice,
                $"device: field 'reservoirCapacityMl' is {Num(capacity)}; expected a capacity > 0 and ≤ {Num(MaxVolumeMl)} mL.");
        }

        return new DeviceInfo { Model = f.String("model"), Firmware = f.String("firmware"), Lot = f.String("lot"), ReservoirCapacityMl = capacity };
    }

    private static string Num(double d) => d.ToString("R", CultureInfo.InvariantCulture);

    private static string Describe(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => $"the string {Truncate(e.SafeRaw())}",
        JsonValueKind.Number => $"the number {Truncate(e.SafeRaw())}",
        JsonValueKind.True or JsonValueKind.False => $"the boolean {e.SafeRaw()}",
        JsonValueKind.Null => "null",
        _ => "missing",
    };

    /// <summary>Shortens for a reason text without splitting a surrogate pair (a lone surrogate cannot be stored or sent).</summary>
    private static string Truncate(string s)
    {
        if (s.Length <= 80)
        {
            return s;
        }

        var cut = char.IsHighSurrogate(s[79]) ? 79 : 80;
        return s[..cut] + "…";
    }

    private const double MaxRateMlPerDay = 100;
    private const double MaxConcentration = 1_000_000;

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
            var s = ReadText(Required(name, JsonValueKind.String, "a non-empty string"), Path, name);
            if (s.Length > MaxStringLength)
            {
                throw new InvalidFieldException(RejectCodes.InvalidValue,
                    $"{Path}: field '{name}' is {s.Length} characters long; the limit is {MaxStringLength}.");
            }

            return s.Length == 0
                ? throw new InvalidFieldException(RejectCodes.InvalidValue, $"{Path}: field '{name}' is an empty string; expected a non-empty string.")
                : s;
        }

        public bool Bool(string name) => Required(name, JsonValueKind.True, "true or false").GetBoolean();

        public double Number(string name)
        {
            var v = Required(name, JsonValueKind.Number, "a number");
            // 1e400 is valid JSON but no double: TryGetDouble refuses it rather than return infinity.
            return v.TryGetDouble(out var d) && double.IsFinite(d)
                ? d
                : throw new InvalidFieldException(RejectCodes.InvalidValue, $"{Path}: field '{name}' is {Truncate(v.SafeRaw())}; expected a finite number.");
        }

        public double Rate(string name)
        {
            var d = Number(name);
            return d < 0 || d > MaxRateMlPerDay
                ? throw new InvalidFieldException(RejectCodes.InvalidValue,
                    $"{Path}: field '{name}' is {Num(d)}; expected a rate from 0 to {Num(MaxRateMlPerDay)} mL/day.")
                : d;
        }

        public double Volume(string name)
        {
            var d = Number(name);
            if (d > MaxVolumeMl)
            {
                throw new InvalidFieldException(RejectCodes.InvalidValue, $"{Path}: field '{name}' is {Num(d)} mL; the largest volume is {Num(MaxVolumeMl)} mL.");
            }

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

        /// <summary>A seq-valued field: an integer from 1 to 2^53 − 1.</summary>
        public long Seq(string name)
        {
            var v = Required(name, JsonValueKind.Number, "an integer");
            if (v.TryGetInt64(out var l))
            {
                return l < 1
                    ? throw new InvalidFieldException(RejectCodes.InvalidSeq, $"{Path}: field '{name}' is {l}; expected an integer ≥ 1.")
                    : l <= RejectionCodes.MaxSeq
                        ? l
                        : throw new InvalidFieldException(RejectCodes.SeqOutOfRange,
                            $"{Path}: field '{name}' is {l}; the largest seq is 2^53 − 1 ({RejectionCodes.MaxSeq}).");
            }

            // An integer too large for 64 bits (or written with an exponent) is out of range, a fraction is not a seq.
            var isIntegral = v.TryGetDouble(out var d) && double.IsFinite(d) && Math.Floor(d) == d;
            if (!double.IsFinite(d) || (isIntegral && Math.Abs(d) > RejectionCodes.MaxSeq))
            {
                throw new InvalidFieldException(d < 0 ? RejectCodes.InvalidSeq : RejectCodes.SeqOutOfRange,
                    $"{Path}: field '{name}' is {Truncate(v.SafeRaw())}; expected an integer from 1 to 2^53 − 1.");
            }

            throw new InvalidFieldException(RejectCodes.InvalidField, $"{Path}: field '{name}' is {Truncate(v.SafeRaw())}; expected an integer.");
        }

        public int Int32(string name, int? min, int? max)
        {
            var v = Required(name, JsonValueKind.Number, "an integer");
            if (!v.TryGetInt32(out var i))
            {
                throw new InvalidFieldException(RejectCodes.InvalidField, $"{Path}: field '{name}' is {v.SafeRaw()}; expected an integer.");
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
            var v = Required(name, JsonValueKind.String, "an RFC 3339 timestamp such as 2026-11-24T03:00:00Z");
            // A timestamp without escapes is read from its bytes, without a string (one per event, issue 15).
            var raw = System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(v);
            if (raw.Length is >= 2 and <= MaxPlainTimestamp + 2 && IsPlainText(raw[1..^1]))
            {
                Span<char> chars = stackalloc char[MaxPlainTimestamp];
                var n = System.Text.Encoding.UTF8.GetChars(raw[1..^1], chars);
                if (ParseTime(chars[..n], out var time))
                {
                    return time;
                }
            }

            var s = ReadText(v, Path, name);
            return ParseTime(s, out var t)
                ? t
                : throw new InvalidFieldException(RejectCodes.InvalidTimestamp,
                    $"{Path}: field '{name}' is \"{Truncate(s)}\"; expected an RFC 3339 timestamp such as 2026-11-24T03:00:00Z.");
        }

        // Longer is not RFC 3339 (2026-11-24T03:00:00.123456789+01:00 is 35): the string path reports it.
        private const int MaxPlainTimestamp = 40;

        private static bool ParseTime(ReadOnlySpan<char> s, out DateTimeOffset time)
        {
            if (Rfc3339().IsMatch(s) &&
                DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AllowWhiteSpaces | DateTimeStyles.AssumeUniversal, out var t))
            {
                time = t.ToUniversalTime();
                return true;
            }

            time = default;
            return false;
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
            var v = Required(name, JsonValueKind.String, OneOf(allowed));
            // The vocabulary's own string, compared without decoding one (a few words per set; one per enum field, issue 15).
            foreach (var word in allowed)
            {
                if (v.ValueEquals(word))
                {
                    return word;
                }
            }

            var s = ReadText(v, Path, name);
            return allowed.Contains(s)
                ? s
                : throw new InvalidFieldException(RejectCodes.InvalidValue,
                    $"{Path}: field '{name}' is \"{Truncate(s)}\"; expected {OneOf(allowed)}.");
        }

        // The vocabularies are a few static sets: their sorted listing is made once per set, not sorted and joined for
        // every enum field of every event (it was a measurable share of the gateway's garbage, issue 15).
        private static string OneOf(FrozenSet<string> allowed) =>
            AllowedListings.GetValue(allowed, static a => new Listing("one of " + string.Join(", ", a.Order(StringComparer.Ordinal)))).Text;

        private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<FrozenSet<string>, Listing> AllowedListings = [];

        private sealed record Listing(string Text);

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
