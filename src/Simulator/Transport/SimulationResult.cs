namespace PumpFleet.Simulator.Transport;

/// <summary>What a run did.</summary>
/// <param name="Hubs">Hubs simulated.</param>
/// <param name="Pumps">Pumps simulated.</param>
/// <param name="EventsGenerated">Events the generator produced.</param>
/// <param name="EventsPublished">Events published, resends included.</param>
/// <param name="EventsResent">Events published more than once.</param>
/// <param name="AcksReceived">Acks received.</param>
/// <param name="RejectsReceived">Rejects received.</param>
/// <param name="Reconnects">Reconnects after a lost connection.</param>
/// <param name="Unacked">Events still not acked when the run ended.</param>
/// <param name="FaultsInjected">Ground-truth records written.</param>
public sealed record SimulationResult(int Hubs, int Pumps, long EventsGenerated, long EventsPublished, long EventsResent,
    long AcksReceived, long RejectsReceived, long Reconnects, long Unacked, int FaultsInjected);
