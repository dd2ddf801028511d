using System.Text;
using PumpFleet.Contracts.Events;
using PumpFleet.Simulator.Generation;
using PumpFleet.Simulator.Wire;

namespace PumpFleet.Simulator.Transport;

public sealed partial class HubClient
{
    /// <summary>What a hub keeps of an event until it is acked: the seq and the wire JSON.</summary>
    private readonly record struct QueuedEvent(long Seq, string Json);

    private sealed class PumpQueue(string serial, DeviceInfo device)
    {
        public string Serial { get; } = serial;
        public DeviceInfo Device { get; } = device;

        /// <summary>Unacked events, in seq order.</summary>
        public List<QueuedEvent> Unacked { get; } = [];
        public long Committed { get; set; }
        public long SentUpTo { get; set; }
        public long MaxAttempted { get; set; }
        public bool DeviceSent { get; set; }
        public bool AckSinceConnect { get; set; }

        /// <summary>The latest ack's view above committedSeq: what it says is stored need not be resent.</summary>
        public AckInfo? LastAck { get; set; }

        /// <summary>
        /// True when the latest ack says this seq is stored: at or below highestSeq, not in a listed missing range,
        /// and not beyond the last listed range when the list may have been cut at 32.
        /// </summary>
        public bool AckSaysStored(long seq)
        {
            if (LastAck is not { } a || seq > a.HighestSeq)
            {
                return false;
            }

            if (a.Missing.Count >= 32 && seq > a.Missing[^1].To)
            {
                return false;
            }

            foreach (var (from, to) in a.Missing)
            {
                if (from <= seq && seq <= to)
                {
                    return false;
                }
            }

            return true;
        }

        /// <summary>Index of the first queued event with a seq above <paramref name="seq"/> (binary search: the queue can be long after an outage).</summary>
        public int FirstAbove(long seq)
        {
            int lo = 0, hi = Unacked.Count;
            while (lo < hi)
            {
                var mid = (lo + hi) >>> 1;
                if (Unacked[mid].Seq <= seq)
                {
                    lo = mid + 1;
                }
                else
                {
                    hi = mid;
                }
            }

            return lo;
        }

        /// <summary>The next batch to send: above what this connection sent and what is committed, at most 500 events and the size limit.</summary>
        public List<QueuedEvent> NextChunk()
        {
            var chunk = new List<QueuedEvent>();
            var bytes = 0;
            for (var i = FirstAbove(Math.Max(SentUpTo, Committed)); i < Unacked.Count && chunk.Count < HubQueue.MaxEvents; i++)
            {
                if (AckSaysStored(Unacked[i].Seq))
                {
                    // Resend exactly the missing ranges and what is above highestSeq; the rest is kept until
                    // committedSeq covers it, but sending it again would only be a duplicate.
                    continue;
                }

                var size = Encoding.UTF8.GetByteCount(Unacked[i].Json) + 1;
                if (chunk.Count > 0 && bytes + size > HubQueue.MaxPayloadBytes)
                {
                    break;
                }

                chunk.Add(Unacked[i]);
                bytes += size;
            }

            return chunk;
        }
    }
}
