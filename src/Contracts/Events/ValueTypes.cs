namespace PumpFleet.Contracts.Events;

/// <summary>A drug concentration, e.g. 2000 mcg/mL.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.Concentration.v1")]
public sealed record Concentration
{
    /// <summary>Amount per unit volume.</summary>
    [Id(0)] public required double Value { get; init; }
    /// <summary>Unit, e.g. <c>mcg/mL</c> or <c>mg/mL</c>.</summary>
    [Id(1)] public required string Unit { get; init; }
}

/// <summary>One step of a flex schedule: from <see cref="Start"/> (HH:MM, pump clock) the rate is <see cref="RateMlPerDay"/>.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.FlexStep.v1")]
public sealed record FlexStep
{
    /// <summary>Start time of day, <c>HH:MM</c>.</summary>
    [Id(0)] public required string Start { get; init; }
    /// <summary>Rate from that time of day on.</summary>
    [Id(1)] public required double RateMlPerDay { get; init; }
}

/// <summary>Patient-activated bolus settings.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.BolusSettings.v1")]
public sealed record BolusSettings
{
    /// <summary>Volume of one bolus.</summary>
    [Id(0)] public required double DoseMl { get; init; }
    /// <summary>Minimum minutes between boluses.</summary>
    [Id(1)] public required int LockoutMin { get; init; }
    /// <summary>Maximum boluses per 24 h.</summary>
    [Id(2)] public required int MaxPerDay { get; init; }
}

/// <summary>The <c>device</c> object of an event batch.</summary>
[GenerateSerializer, Immutable, Alias("pumpfleet.DeviceInfo.v1")]
public sealed record DeviceInfo
{
    /// <summary>Model, e.g. <c>SM2-40</c>.</summary>
    [Id(0)] public required string Model { get; init; }
    /// <summary>Firmware version.</summary>
    [Id(1)] public required string Firmware { get; init; }
    /// <summary>Manufacturing lot.</summary>
    [Id(2)] public required string Lot { get; init; }
    /// <summary>Reservoir capacity in mL (20 or 40 for the pumps in the field).</summary>
    [Id(3)] public required double ReservoirCapacityMl { get; init; }
}
