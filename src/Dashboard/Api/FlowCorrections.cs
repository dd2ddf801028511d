using System.Text.Json;
using PumpFleet.Contracts.Views;
using PumpFleet.Domain.Detection;
using PumpFleet.Domain.Detection.CohortFlow;
using PumpFleet.ReadModels;

namespace PumpFleet.Dashboard.Api;

/// <summary>
/// The open <c>cohort-flow-deviation</c> warnings as forecast corrections (docs/detection.md): read from the anomaly
/// read model (a handful of rows), applied in Domain.
/// </summary>
internal static class FlowCorrections
{
    /// <summary>Open (or acknowledged) cohort flow warnings with a usable factor.</summary>
    public static async Task<IReadOnlyList<CohortFlowCorrection>> OpenAsync(IReadModelQueries queries, CancellationToken ct)
    {
        var items = (await queries.ListAnomaliesAsync("open", AnomalyKinds.CohortFlowDeviation, null, null, 500, ct))
            .Concat(await queries.ListAnomaliesAsync("acknowledged", AnomalyKinds.CohortFlowDeviation, null, null, 500, ct));
        return [.. items.Select(a => CohortFlowCorrection.From(a.Id, a.Serial, a.Kind, a.Status, a.DetectedAt, Factor(a.Evidence))).OfType<CohortFlowCorrection>()];
    }

    /// <summary>The view with <see cref="PumpView.FlowCorrection"/> set when a warning covers the pump.</summary>
    public static PumpView Apply(PumpView view, IReadOnlyList<CohortFlowCorrection> open) =>
        CohortFlowCorrection.For(view.Model, view.Firmware, view.Lot, open) is { } c ? view with { FlowCorrection = c.Apply(view) } : view;

    private static double? Factor(JsonElement evidence) =>
        evidence.ValueKind == JsonValueKind.Object && evidence.TryGetProperty("factor", out var f) && f.ValueKind == JsonValueKind.Number ? f.GetDouble() : null;
}
