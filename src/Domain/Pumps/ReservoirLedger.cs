using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Views;
using PumpFleet.Domain.States;

namespace PumpFleet.Domain.Pumps;

/// <summary>
/// The platform's own reservoir ledger. A SynchroMed-style low-reservoir alarm is computed by the pump from the
/// programmed rate, not measured, so an over-infusing pump can run dry without alarming (§0 item 1).
/// The ledger keeps programmed (prescription integrated over event time), delivered (motor reports) and measured
/// (sensor) volumes side by side from a baseline: the last refill, or the first reading when no refill is known yet.
/// </summary>
public sealed class ReservoirLedger
{
    /// <summary>Volume at the baseline: <c>addedMl</c> of the last refill (the residual is aspirated first), or the first reading.</summary>
    public double? BaselineMl { get => _baselineMl; set => _baselineMl = value; }

    private OptionalDouble _baselineMl;
    public DateTimeOffset? BaselineAt { get => _baselineAt; set => _baselineAt = value; }

    private OptionalTime _baselineAt;
    public bool BaselineIsRefill { get; set; }
    public double ProgrammedSinceBaselineMl { get; set; }
    public double DeliveredSinceBaselineMl { get; set; }
    public double ProgrammedTotalMl { get; set; }
    public double DeliveredTotalMl { get; set; }

    /// <summary>Event time up to which the programmed rate has been integrated.</summary>
    public DateTimeOffset? ProgrammedIntegratedTo { get => _programmedIntegratedTo; set => _programmedIntegratedTo = value; }

    private OptionalTime _programmedIntegratedTo;

    public double? MeasuredMl { get => _measuredMl; set => _measuredMl = value; }


    private OptionalDouble _measuredMl;
    public DateTimeOffset? MeasuredAt { get => _measuredAt; set => _measuredAt = value; }

    private OptionalTime _measuredAt;

    /// <summary>The pump's own arithmetic (<c>reservoir.level</c> with <c>source: estimated</c>).</summary>
    public double? PumpEstimatedMl { get => _pumpEstimatedMl; set => _pumpEstimatedMl = value; }

    private OptionalDouble _pumpEstimatedMl;
    public int Refills { get; set; }

    /// <summary>Expected minus aspirated residual at the last refill: positive means less came back than the pump expected.</summary>
    public double? LastRefillDiscrepancyMl { get => _lastRefillDiscrepancyMl; set => _lastRefillDiscrepancyMl = value; }

    private OptionalDouble _lastRefillDiscrepancyMl;
    public double? LastRefillExpectedMl { get => _lastRefillExpectedMl; set => _lastRefillExpectedMl = value; }

    private OptionalDouble _lastRefillExpectedMl;
    public double? LastRefillAspiratedMl { get => _lastRefillAspiratedMl; set => _lastRefillAspiratedMl = value; }

    private OptionalDouble _lastRefillAspiratedMl;

    /// <summary>The platform's estimate: baseline minus what the motor reported delivering since.</summary>
    public double? EstimatedMl => BaselineMl is { } b ? Math.Max(0, b - DeliveredSinceBaselineMl) : null;

    /// <summary>Integrates the programmed rate up to <paramref name="at"/> (no-op for times not after the last one).</summary>
    public void AdvanceProgrammed(PrescriptionSet? rx, string? deliveryState, DateTimeOffset at)
    {
        if (ProgrammedIntegratedTo is { } from && at > from)
        {
            var v = DeliveryStates.IsStopped(deliveryState) ? 0 : ProgrammedRate.Integrate(rx, from, at);
            ProgrammedSinceBaselineMl += v;
            ProgrammedTotalMl += v;
        }

        if (ProgrammedIntegratedTo is null || at > ProgrammedIntegratedTo)
        {
            ProgrammedIntegratedTo = at;
        }
    }

    /// <summary>A <c>dose.delivered</c> report.</summary>
    public void OnDelivered(double volumeMl)
    {
        DeliveredSinceBaselineMl += volumeMl;
        DeliveredTotalMl += volumeMl;
    }

    /// <summary>A <c>reservoir.level</c> reading.</summary>
    public void OnLevel(ReservoirLevelReported x, bool trusted)
    {
        if (x.Source == "measured")
        {
            if (MeasuredAt is null || (trusted && x.At >= MeasuredAt))
            {
                MeasuredMl = x.VolumeMl;
                MeasuredAt = x.At;
            }
        }
        else
        {
            PumpEstimatedMl = x.VolumeMl;
        }

        if (BaselineMl is null)
        {
            ResetBaseline(x.VolumeMl, x.At, isRefill: false);
        }
    }

    /// <summary>A <c>refill</c>: the residual was aspirated and <c>addedMl</c> injected.</summary>
    public void OnRefill(RefillPerformed x)
    {
        Refills++;
        LastRefillExpectedMl = x.ExpectedResidualMl;
        LastRefillAspiratedMl = x.AspiratedResidualMl;
        LastRefillDiscrepancyMl = x.ExpectedResidualMl - x.AspiratedResidualMl;
        ResetBaseline(x.AddedMl, x.At, isRefill: true);
    }

    private void ResetBaseline(double volume, DateTimeOffset at, bool isRefill)
    {
        BaselineMl = volume;
        BaselineAt = at;
        BaselineIsRefill = isRefill;
        ProgrammedSinceBaselineMl = 0;
        DeliveredSinceBaselineMl = 0;
    }

    /// <summary>A deep copy (every member is a value), for the re-fold checkpoints.</summary>
    public ReservoirLedger Clone() => (ReservoirLedger)MemberwiseClone();

    /// <summary>The API view.</summary>
    public LedgerView ToView(double forecastRate) => new()
    {
        LevelAtRefillMl = BaselineMl,
        LastRefillAt = BaselineIsRefill ? BaselineAt : null,
        ProgrammedSinceRefillMl = Math.Round(ProgrammedSinceBaselineMl, 4),
        DeliveredSinceRefillMl = Math.Round(DeliveredSinceBaselineMl, 4),
        MeasuredMl = MeasuredMl,
        MeasuredAt = MeasuredAt,
        EstimatedMl = EstimatedMl is { } e ? Math.Round(e, 4) : null,
        ProgrammedTotalMl = Math.Round(ProgrammedTotalMl, 4),
        DeliveredTotalMl = Math.Round(DeliveredTotalMl, 4),
        Refills = Refills,
        LastRefillDiscrepancyMl = LastRefillDiscrepancyMl is { } d ? Math.Round(d, 4) : null,
        ForecastRateMlPerDay = forecastRate,
    };
}
