namespace PumpFleet.Simulator.Generation;

/// <summary>A drug with the concentrations it comes in and a typical daily dose range in the concentration's amount unit.</summary>
public sealed record DrugSpec(string Name, string Unit, IReadOnlyList<double> Concentrations, double MinDailyDose, double MaxDailyDose, bool PatientBolus);
