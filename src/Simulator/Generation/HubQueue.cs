using PumpFleet.Contracts.Events;
using PumpFleet.Simulator.Faults;

namespace PumpFleet.Simulator.Generation;

/// <summary>A hub's collecting and sending in the generator: pending events per pump, outages, batch cutting.</summary>
internal sealed class HubQueue
{
    /// <summary>Payload limit of the protocol minus room for the envelope and device object.</summary>
    internal const int MaxPayloadBytes = (256 * 1024) - 1024;

    internal const int MaxEvents = 500;

    private readonly bool[] _deviceSent;
    private readonly IReadOnlyList<HubOutage> _outages;
    private int _nextOutage;
    private DateTimeOffset? _offlineUntil;
    private DateTimeOffset _nextSend;

    public HubQueue(HubProfile profile, IReadOnlyList<HubOutage> outages, DateTimeOffset start)
    {
        Profile = profile;
        Pending = [.. profile.Pumps.Select(_ => new List<GeneratedEvent>())];
        _deviceSent = new bool[profile.Pumps.Count];
        _outages = outages;
        _nextSend = start;
    }

    public HubProfile Profile { get; }

    public List<GeneratedEvent>[] Pending { get; }

    public bool Online => _offlineUntil is null;

    /// <summary>Applies outages that start or end in (t0, t1].</summary>
    public void Advance(DateTimeOffset t0, DateTimeOffset t1, List<FleetOutput> items)
    {
        while (true)
        {
            if (_offlineUntil is { } until)
            {
                if (until > t1)
                {
                    return;
                }

                _offlineUntil = null;
                Array.Clear(_deviceSent);
                items.Add(new HubConnectivityChanged(until, Profile.HubId, true));
                continue;
            }

            if (_nextOutage >= _outages.Count || _outages[_nextOutage].Start > t1)
            {
                return;
            }

            var o = _outages[_nextOutage++];
            var start = o.Start > t0 ? o.Start : t0;
            if (o.End <= start)
            {
                continue;
            }

            _offlineUntil = o.End;
            items.Add(new HubConnectivityChanged(start, Profile.HubId, false));
            if (o.Silent)
            {
                foreach (var p in Profile.Pumps)
                {
                    items.Add(new FaultInjected(start, new GroundTruthRecord(p.Serial, p.HubId, FaultKind.SilentHub, start, o.End, [])));
                }
            }

            // Overlapping outages merge into one.
            while (_nextOutage < _outages.Count && _outages[_nextOutage].Start <= _offlineUntil)
            {
                var next = _outages[_nextOutage++];
                if (next.End > _offlineUntil)
                {
                    _offlineUntil = next.End;
                }

                if (next.Silent)
                {
                    foreach (var p in Profile.Pumps)
                    {
                        items.Add(new FaultInjected(next.Start, new GroundTruthRecord(p.Serial, p.HubId, FaultKind.SilentHub, next.Start, next.End, [])));
                    }
                }
            }
        }
    }

    /// <summary>Sends what is pending when a send is due, a pump's queue is full, or the run ends (outages end with it).</summary>
    public void Send(DateTimeOffset t, TimeSpan interval, bool last, List<FleetOutput> items)
    {
        if (last && _offlineUntil is not null)
        {
            _offlineUntil = null;
            Array.Clear(_deviceSent);
            items.Add(new HubConnectivityChanged(t, Profile.HubId, true));
        }

        if (!Online)
        {
            return;
        }

        var due = t >= _nextSend || last || Pending.Any(p => p.Count >= MaxEvents);
        if (!due)
        {
            return;
        }

        while (_nextSend <= t)
        {
            _nextSend += interval;
        }

        for (var i = 0; i < Pending.Length; i++)
        {
            var pump = Profile.Pumps[i];
            foreach (var chunk in Cut(Pending[i]))
            {
                DeviceInfo? device = _deviceSent[i] ? null : pump.Device;
                _deviceSent[i] = true;
                items.Add(new PumpBatch(t, Profile.HubId, pump.Serial, device, chunk));
            }

            Pending[i] = [];
        }
    }

    /// <summary>Cuts a queue into batches of at most 500 events and at most the payload limit.</summary>
    internal static IEnumerable<IReadOnlyList<GeneratedEvent>> Cut(IReadOnlyList<GeneratedEvent> events)
    {
        var chunk = new List<GeneratedEvent>();
        var bytes = 0;
        foreach (var e in events)
        {
            var size = System.Text.Encoding.UTF8.GetByteCount(e.Json) + 1;
            if (chunk.Count > 0 && (chunk.Count >= MaxEvents || bytes + size > MaxPayloadBytes))
            {
                yield return chunk;
                chunk = [];
                bytes = 0;
            }

            chunk.Add(e);
            bytes += size;
        }

        if (chunk.Count > 0)
        {
            yield return chunk;
        }
    }
}
