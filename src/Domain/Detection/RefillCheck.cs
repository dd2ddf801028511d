using PumpFleet.Domain.Pumps;
using PumpFleet.Contracts.Events;

namespace PumpFleet.Domain.Detection;

/// <summary>
/// What the refill-discrepancy detector needs: the last refill's residuals and the motor volume of the cycle it
/// closed (the aspirated residual is the observed flow of a whole cycle, §3.3), and the first measured
/// level after it (a pocket fill shows on a fill-level sensor at once [69]).
/// </summary>
public sealed class RefillCheck
{
    /// <summary>Refills seen.</summary>
    public int Refills { get; set; }

    public DateTimeOffset? LastRefillAt { get => _lastRefillAt; set => _lastRefillAt = value; }


    private OptionalTime _lastRefillAt;
    public double ExpectedResidualMl { get; set; }
    public double AspiratedResidualMl { get; set; }
    public double AddedMl { get; set; }

    /// <summary>Cumulative motor volume at the last refill.</summary>
    public double DeliveredTotalAtRefillMl { get; set; }

    /// <summary>Motor volume of the cycle the last refill closed (since the refill before it), or null for the first refill.</summary>
    public double? CycleDeliveredMl { get => _cycleDeliveredMl; set => _cycleDeliveredMl = value; }

    private OptionalDouble _cycleDeliveredMl;

    /// <summary>Length of that cycle in days.</summary>
    public double? CycleDays { get => _cycleDays; set => _cycleDays = value; }

    private OptionalDouble _cycleDays;

    /// <summary>First trusted measured level after the last refill, with the motor volume delivered between.</summary>
    public double? FirstMeasuredMl { get => _firstMeasuredMl; set => _firstMeasuredMl = value; }

    private OptionalDouble _firstMeasuredMl;
    public DateTimeOffset? FirstMeasuredAt { get => _firstMeasuredAt; set => _firstMeasuredAt = value; }

    private OptionalTime _firstMeasuredAt;
    public double DeliveredBeforeFirstMeasuredMl { get; set; }

    /// <summary>A deep copy (every member is a value), for the re-fold checkpoints.</summary>
    public RefillCheck Clone() => (RefillCheck)MemberwiseClone();

    /// <summary>Folds a refill (after the ledger saw earlier deliveries).</summary>
    public void OnRefill(RefillPerformed x, double deliveredTotalMl)
    {
        CycleDeliveredMl = Refills > 0 ? deliveredTotalMl - DeliveredTotalAtRefillMl : null;
        CycleDays = Refills > 0 && LastRefillAt is { } prev ? (x.At - prev).TotalDays : null;
        Refills++;
        LastRefillAt = x.At;
        ExpectedResidualMl = x.ExpectedResidualMl;
        AspiratedResidualMl = x.AspiratedResidualMl;
        AddedMl = x.AddedMl;
        DeliveredTotalAtRefillMl = deliveredTotalMl;
        FirstMeasuredMl = null;
        FirstMeasuredAt = null;
        DeliveredBeforeFirstMeasuredMl = 0;
    }

    /// <summary>Folds a trusted measured level.</summary>
    public void OnMeasured(DateTimeOffset at, double levelMl, double deliveredTotalMl)
    {
        if (LastRefillAt is { } r && FirstMeasuredAt is null && at >= r)
        {
            FirstMeasuredMl = levelMl;
            FirstMeasuredAt = at;
            DeliveredBeforeFirstMeasuredMl = deliveredTotalMl - DeliveredTotalAtRefillMl;
        }
    }

    /// <summary>Expected minus aspirated residual: positive when less came back than the pump predicted.</summary>
    public double ResidualDiscrepancyMl => ExpectedResidualMl - AspiratedResidualMl;

    /// <summary>Injected minus delivered minus first measured: positive when the reservoir holds less than was injected.</summary>
    public double? FillDeficitMl => FirstMeasuredMl is { } m ? AddedMl - DeliveredBeforeFirstMeasuredMl - m : null;
}
