using System.Text.Json;
using PumpFleet.Contracts;
using PumpFleet.Domain.Pumps;
using PumpFleet.Domain.States;

namespace PumpFleet.Domain.Tests;

public sealed class StatesTests
{
    [Fact]
    public void AnomalyStatus_InSnapshots_IsTheWireString()
    {
        var record = new AnomalyRecord { Id = "a1", Kind = "silent", Severity = "warning", Status = AnomalyStatus.Acknowledged };
        var json = JsonSerializer.Serialize(record, SnapshotJson.Options);
        Assert.Contains("\"status\":\"acknowledged\"", json, StringComparison.Ordinal);

        // Snapshots written before the status was typed hold the same strings and still load.
        var old = JsonSerializer.Deserialize<AnomalyRecord>("{\"id\":\"a2\",\"status\":\"open\"}", SnapshotJson.Options)!;
        Assert.Equal(AnomalyStatus.Open, old.Status);
        Assert.Equal("open", old.ToView("SN1").Status);
    }

    [Fact]
    public void WireNames_AreExactlyTheProtocolVocabularies()
    {
        Assert.Equal(Vocabulary.Phases.Order(StringComparer.Ordinal), Enum.GetValues<TherapyPhase>().Select(p => p.ToWire()).Order(StringComparer.Ordinal));
        Assert.Equal(Vocabulary.DeliveryStates.Order(StringComparer.Ordinal), Enum.GetValues<DeliveryState>().Select(p => p.ToWire()).Order(StringComparer.Ordinal));
        Assert.Equal(Vocabulary.AnomalySeverities.Order(StringComparer.Ordinal), Enum.GetValues<AnomalySeverity>().Select(p => p.ToWire()).Order(StringComparer.Ordinal));
        Assert.Equal(Vocabulary.AlarmSeverities.Order(StringComparer.Ordinal), Enum.GetValues<AlarmSeverity>().Select(p => p.ToWire()).Order(StringComparer.Ordinal));
        Assert.Equal(["acknowledged", "open", "resolved"], Enum.GetValues<AnomalyStatus>().Select(p => p.ToWire()).Order(StringComparer.Ordinal));
        Assert.All(Enum.GetValues<TherapyPhase>(), p => Assert.Equal(p, TherapyPhases.Parse(p.ToWire())));
        Assert.All(Enum.GetValues<DeliveryState>(), p => Assert.Equal(p, DeliveryStates.Parse(p.ToWire())));
        Assert.All(Enum.GetValues<AnomalySeverity>(), p => Assert.Equal(p, AnomalySeverities.Parse(p.ToWire())));
        Assert.All(Enum.GetValues<AlarmSeverity>(), p => Assert.Equal(p, AlarmSeverities.Parse(p.ToWire())));
    }

    [Fact]
    public void UnknownWireNames_ParseToNothing_AndSeverityRanksInOrder()
    {
        Assert.Null(TherapyPhases.Parse("EXPLANTED"));
        Assert.Null(TherapyPhases.Parse(null));
        Assert.Null(DeliveryStates.Parse("paused"));
        Assert.False(DeliveryStates.IsStopped(null));
        Assert.True(DeliveryStates.IsStopped("stopped"));
        Assert.True(TherapyPhases.IsExplanted("explanted"));
        Assert.True(AlarmSeverities.IsCritical("critical"));
        Assert.False(AlarmSeverities.IsCritical("non-critical"));
        Assert.Equal(AnomalySeverity.Info, AnomalySeverities.Parse("bogus"));
        Assert.True(AnomalySeverity.Info < AnomalySeverity.Warning && AnomalySeverity.Warning < AnomalySeverity.Critical);
    }
}
