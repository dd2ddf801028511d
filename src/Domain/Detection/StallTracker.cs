using PumpFleet.Contracts.Events;
using PumpFleet.Domain.Pumps;
using PumpFleet.Domain.States;

namespace PumpFleet.Domain.Detection;

/// <summary>
/// Sufficient statistics of the flow-stall detector: motor reports of (near) zero volume over intervals with a
/// programmed rate, and the last interval that delivered normally. The other stall signals (MOTOR_STALL alarm,
/// delivery stopped for a stall, motor stalled) are already in <see cref="PumpState"/>.
/// </summary>
public sealed class StallTracker
{
    /// <summary>Fraction of the programmed volume below which an interval counts as "no delivery" in the fold.</summary>
    /// <remarks>Fixed in the fold (not an option) so that state never depends on configuration; see the options' StallDeliveredFraction for the decision.</remarks>
    public const double NoDeliveryFraction = 0.1;

    /// <summary>Fraction of the programmed volume at or above which an interval counts as delivering normally.</summary>
    public const double HealthyFraction = 0.5;

    /// <summary>Consecutive intervals (basal/periodic reports, or boluses) with no delivery while a rate was programmed.</summary>
    public int ConsecutiveZeroIntervals { get; set; }

    /// <summary>Start (event time) of the current run of zero intervals.</summary>
    public DateTimeOffset? ZeroSince { get => _zeroSince; set => _zeroSince = value; }

    private OptionalTime _zeroSince;

    /// <summary>Programmed minus delivered volume during the current run.</summary>
    public double MissingMl { get; set; }

    /// <summary>Event time of the last interval that delivered normally.</summary>
    public DateTimeOffset? LastHealthyAt { get => _lastHealthyAt; set => _lastHealthyAt = value; }

    private OptionalTime _lastHealthyAt;

    /// <summary>A deep copy (every member is a value), for the re-fold checkpoints.</summary>
    public StallTracker Clone() => (StallTracker)MemberwiseClone();

    /// <summary>Folds one trusted dose report.</summary>
    public void OnDose(DoseDelivered d, PumpState state)
    {
        double expected;
        if (d.Kind == "patient-bolus")
        {
            expected = state.Prescription?.Bolus?.DoseMl ?? 0;
        }
        else if (d.Kind is "basal" or "periodic")
        {
            expected = DeliveryStates.IsStopped(state.DeliveryState) ? 0 : ProgrammedRate.Integrate(state.Prescription, d.From, d.At);
        }
        else
        {
            return;   // priming and bridging boluses are clinician-driven, not the programmed rate
        }

        // Below a microlitre the motor's step resolution, not a stall, decides the reported volume.
        if (expected < 1e-3)
        {
            return;
        }

        if (d.VolumeMl < NoDeliveryFraction * expected)
        {
            ZeroSince ??= d.From;
            ConsecutiveZeroIntervals++;
            MissingMl += expected - d.VolumeMl;
        }
        else if (d.VolumeMl >= HealthyFraction * expected)
        {
            ConsecutiveZeroIntervals = 0;
            ZeroSince = null;
            MissingMl = 0;
            if (LastHealthyAt is null || d.At > LastHealthyAt)
            {
                LastHealthyAt = d.At;
            }
        }
    }
}
