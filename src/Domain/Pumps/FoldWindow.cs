using System.Text.Json;
using System.Text.Json.Serialization;
using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Json;

namespace PumpFleet.Domain.Pumps;

/// <summary>
/// What makes the device part of <see cref="PumpState"/> independent of arrival order. It exists only while seqs are
/// missing: opened with a checkpoint right below the first gap, it keeps the device events folded since, in seq
/// order, checkpoints of the fold between them, and the flow-detector restarts decided in that stretch. A device
/// event that fills a gap late (batches reordered across gateways, a resend after an outage) restores the last
/// checkpoint below its seq and re-folds the window's events in seq order, so the state is the one seq order gives.
/// When no gap is left it is dropped. Bounded: at most <see cref="MaxEvents"/> events (plus one checkpoint interval);
/// a gap filled after that sets <see cref="PumpState.NeedsRebuild"/> and its owner re-folds the whole stream
/// (<see cref="PumpState.Replay"/>). Part of the snapshot, so a reloaded state re-folds exactly like the live one.
/// </summary>
public sealed class FoldWindow
{
    /// <summary>Device events kept by default while a gap is open: about a week of a pump's reports at the simulator's rates.</summary>
    public const int DefaultMaxEvents = 512;

    /// <summary>Device events between checkpoints: a late event re-folds at most this many more than it must.</summary>
    public const int CheckpointEvery = 64;

    /// <summary>The gaps recorded while the window is open, with the event time after each (pruned once filled).</summary>
    public List<RecentGap> RecentGaps { get; set; } = [];

    /// <summary>Checkpoints in ascending seq; the first is the oldest point a late event can be re-folded from.</summary>
    public List<FoldCheckpoint> Checkpoints { get; set; } = [];

    /// <summary>Device events with seq above the oldest checkpoint, in ascending seq.</summary>
    public List<WindowEvent> Events { get; set; } = [];

    /// <summary>Flow-detector restarts (an over- or under-infusion anomaly opened) with seq above the oldest checkpoint, in order.</summary>
    public List<FlowRestartMark> Restarts { get; set; } = [];

    /// <summary>Device events folded since the newest checkpoint.</summary>
    public int SinceCheckpoint { get; set; }

    /// <summary>Events kept before the oldest checkpoint is dropped; a policy, not state (a full replay lifts it).</summary>
    [JsonIgnore]
    public int MaxEvents { get; set; } = DefaultMaxEvents;

    /// <summary>Index of the newest checkpoint below <paramref name="seq"/>, or -1 when the window does not reach it.</summary>
    public int CheckpointBelow(long seq)
    {
        for (var i = Checkpoints.Count - 1; i >= 0; i--)
        {
            if (Checkpoints[i].Seq < seq)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Index at which an event of <paramref name="seq"/> belongs, or -1 when that seq is already kept.</summary>
    public int InsertionIndex(long seq)
    {
        int lo = 0, hi = Events.Count - 1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            var s = Events[mid].Event.Seq;
            if (s == seq)
            {
                return -1;
            }

            if (s < seq)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return lo;
    }

    /// <summary>Drops the oldest checkpoints (and what only they needed) while more than <see cref="MaxEvents"/> events are kept.</summary>
    public void Trim()
    {
        while (Events.Count > MaxEvents && Checkpoints.Count > 1)
        {
            Checkpoints.RemoveAt(0);
            var oldest = Checkpoints[0].Seq;
            var drop = 0;
            while (drop < Events.Count && Events[drop].Event.Seq <= oldest)
            {
                drop++;
            }

            Events.RemoveRange(0, drop);
            Restarts.RemoveAll(r => r.AfterSeq < oldest);
        }
    }
}

/// <summary>A gap as recorded: the missing seqs, the event time of the event that revealed it, and when that arrived.</summary>
/// <param name="From">First missing seq.</param>
/// <param name="To">Last missing seq.</param>
/// <param name="At">Event time of the event that revealed the gap.</param>
/// <param name="ReceivedAt">
/// Receive time of the batch that revealed it. A backlog uploaded after an outage reveals a gap whose event time is
/// days old although the platform learnt of it just now; the wait for missing data counts from here too.
/// </param>
public sealed record RecentGap(long From, long To, DateTimeOffset At, DateTimeOffset? ReceivedAt = null);

/// <summary>A device event kept for re-folding, with the one envelope field the fold reads.</summary>
/// <param name="Event">The event.</param>
/// <param name="ClockSuspect">Its time is not trusted (decided at ingest and stored).</param>
public sealed record WindowEvent(
    [property: JsonConverter(typeof(DeviceEventJsonConverter))] DeviceEvent Event,
    bool ClockSuspect);

/// <summary>
/// An opened over-/under-infusion anomaly restarts one side of the flow CUSUM. In seq order that restart sits after
/// every device event up to <paramref name="AfterSeq"/> (the highest seq when it was decided), so a re-fold puts it back there.
/// </summary>
public sealed record FlowRestartMark(long AfterSeq, bool Over);

/// <summary>Device events in a snapshot: the stored type name beside the protocol payload, as in the event store.</summary>
public sealed class DeviceEventJsonConverter : JsonConverter<DeviceEvent>
{
    /// <inheritdoc />
    public override DeviceEvent Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        using var doc = JsonDocument.ParseValue(ref reader);
        var root = doc.RootElement;
        if (!root.TryGetProperty("type", out var type) || !root.TryGetProperty("data", out var data))
        {
            throw new JsonException("A kept device event needs 'type' and 'data'.");
        }

        return EventJson.Deserialize(type.GetString() ?? "", data.GetRawText()) as DeviceEvent
            ?? throw new JsonException($"'{type.GetString()}' is not a device event.");
    }

    /// <inheritdoc />
    public override void Write(Utf8JsonWriter writer, DeviceEvent value, JsonSerializerOptions options)
    {
        writer.WriteStartObject();
        writer.WriteString("type", EventTypes.NameOf(value));
        writer.WritePropertyName("data");
        JsonSerializer.Serialize(writer, value, value.GetType(), EventJson.Options);
        writer.WriteEndObject();
    }
}
