namespace PumpFleet.Simulator.Faults;

/// <summary>The fault kinds the simulator injects, with their ground-truth names.</summary>
public static class FaultKind
{
    /// <summary>Motor stops for good: zero delivery, MOTOR_STALL, delivery stopped.</summary>
    public const string FullStall = "full-stall";
    /// <summary>Stall episodes of a few hours that recover.</summary>
    public const string IntermittentStall = "intermittent-stall";
    /// <summary>True flow below programmed by <c>percent</c>.</summary>
    public const string UnderInfusion = "under-infusion";
    /// <summary>True flow above programmed by <c>percent</c>.</summary>
    public const string OverInfusion = "over-infusion";
    /// <summary>The next refill goes into the pocket instead of the reservoir.</summary>
    public const string PocketFill = "pocket-fill";
    /// <summary>The catheter is blocked: nothing leaves the reservoir.</summary>
    public const string CatheterOcclusion = "catheter-occlusion";
    /// <summary>Early ERI and EOS after a low-battery reset.</summary>
    public const string BatteryFailure = "battery-failure";
    /// <summary>The hub publishes nothing for a period.</summary>
    public const string SilentHub = "silent-hub";
    /// <summary>
    /// The next refill is filled at <c>factor</c> × the prescribed concentration (a wrong vial, e.g. 2000 instead of
    /// 500 mcg/mL; a known cause of fatal overdose, §3.5). Injected by scenario only: no default rate, so
    /// random fleets are unchanged.
    /// </summary>
    public const string WrongConcentration = "wrong-concentration";
    /// <summary>A firmware or lot cohort with raised fault rates.</summary>
    public const string CohortDrift = "cohort-drift";

    /// <summary>Kinds that happen to a single pump, by rate.</summary>
    public static readonly IReadOnlyList<string> PumpKinds =
        [FullStall, IntermittentStall, UnderInfusion, OverInfusion, PocketFill, CatheterOcclusion, BatteryFailure];

    /// <summary>Every kind.</summary>
    public static readonly IReadOnlyList<string> All = [.. PumpKinds, WrongConcentration, SilentHub, CohortDrift];

    /// <summary>
    /// Default rates per pump-year (silent-hub: per hub-year). Derived from §0 and §3: about 0.04 device
    /// failures per patient-year [62], over-infusion under 0.14 % [20], catheter occlusions 5 in 126 patients over
    /// ~43 months [77], battery resets 55 in ~140k implants [8]. Split between kinds is a modelling choice.
    /// </summary>
    public static readonly IReadOnlyDictionary<string, double> DefaultRates = new Dictionary<string, double>(StringComparer.Ordinal)
    {
        [FullStall] = 0.01,
        [IntermittentStall] = 0.02,
        [UnderInfusion] = 0.005,
        [OverInfusion] = 0.0014,
        [PocketFill] = 0.002,
        [CatheterOcclusion] = 0.011,
        [BatteryFailure] = 0.0004,
        [SilentHub] = 0.1,
    };
}
