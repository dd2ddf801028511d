namespace PumpFleet.Domain.Detection;

/// <summary>
/// Decision thresholds of the per-pump anomaly detectors and the fleet checks. The fold keeps only sufficient
/// statistics (sums, CUSUM values, last readings), so these thresholds can change without replaying any stream.
/// Every default names its reason and source; the ranges are checked on start by AnomalyDetectionOptionsValidator (src/Grains) ([n]: the numbered sources in docs/detection.md, "Sources").
/// </summary>
public sealed class AnomalyDetectionOptions
{
    /// <summary>Configuration section.</summary>
    public const string SectionName = "PumpFleet:Detection";

    /// <summary>
    /// Relative flow-accuracy band. SynchroMed II's labelled accuracy is ±14.5 %, and over-infusion is defined as
    /// delivery more than 14.5 % above the programmed rate (§0 item 2 [16][17][18]). A flow deviation inside the
    /// band is never reported. Default: 0.145.
    /// </summary>
    public double AccuracyBandFraction { get; set; } = 0.145;

    /// <summary>
    /// CUSUM decision interval of the flow detector, in standard deviations of the telescoped smoothed-residual noise
    /// (see docs/detection.md). Chosen on the simulator scoring (docs/benchmarks.md, 1000 pumps × 60 days): 4 finds a
    /// ±20 % deviation within 7 days on 93–95 % of sensor pumps at ≥ 0.2 mL/day with 0.03 false alerts per 1000
    /// pump-days; 5 gives no false alert but only 85 % within 7 days. Default: 4.
    /// </summary>
    public double FlowCusumThresholdSigmas { get; set; } = 4;

    /// <summary>
    /// Floor of the per-reading noise of measured reservoir levels, in mL. The noise is estimated online from the
    /// readings; the floor keeps a perfectly steady pump (zero variance) from turning every rounding step into an
    /// alarm. The fact sheet gives no sensor resolution (§8 not found); 0.05 mL is half a 0.1 mL syringe graduation.
    /// Default: 0.05.
    /// </summary>
    public double LevelNoiseFloorMl { get; set; } = 0.05;

    /// <summary>
    /// Prior of the per-reading level noise (mL), combined with the online estimate as if it had been seen
    /// <see cref="LevelNoisePriorReadings"/> times (a conjugate prior on the variance). Without it a few quiet readings
    /// shrink the estimate and with it the CUSUM threshold. The fact sheet has no sensor precision (§8); 0.1 mL is a
    /// syringe graduation and the simulator's sensor noise. Default: 0.1.
    /// </summary>
    public double LevelNoisePriorMl { get; set; } = 0.1;

    /// <summary>Weight of <see cref="LevelNoisePriorMl"/> in readings: ten days of 6-hourly readings. Default: 40.</summary>
    public int LevelNoisePriorReadings { get; set; } = 40;

    /// <summary>
    /// Measured readings needed before the flow detector decides anything (noise estimate warm-up): one day of
    /// 6-hourly readings and a little more. Default: 6.
    /// </summary>
    public int FlowMinReadings { get; set; } = 6;

    /// <summary>
    /// An open under- or over-infusion anomaly is resolved automatically when the detector has seen this long of
    /// readings since opening without its CUSUM rising again. A week matches the detection goal horizon. Default: 7 days.
    /// </summary>
    public TimeSpan FlowResolveAfter { get; set; } = TimeSpan.FromDays(7);

    /// <summary>
    /// Refill discrepancy (expected minus aspirated, or injected minus first measured) above which a 20 mL pump is a
    /// possible pocket fill: over 1 mL is potentially consequential (§0 item 3 [69]). Default: 1.
    /// </summary>
    public double PocketFillThresholdSmallMl { get; set; } = 1.0;

    /// <summary>The same for a 40 mL pump: over 2 mL (§0 item 3 [69]). Default: 2.</summary>
    public double PocketFillThresholdLargeMl { get; set; } = 2.0;

    /// <summary>
    /// Smallest absolute refill discrepancy reported as outside the accuracy band, in mL. Below it the syringe
    /// read-out dominates; the fact sheet gives no syringe precision, so this is a design choice. Default: 0.5.
    /// </summary>
    public double RefillMinDiscrepancyMl { get; set; } = 0.5;

    /// <summary>
    /// Window after a refill in which the first measured level is compared with the injected volume (a pocket fill
    /// shows at once on a fill-level sensor [69]). Default: 24 hours.
    /// </summary>
    public TimeSpan PostRefillCheckWindow { get; set; } = TimeSpan.FromHours(24);

    /// <summary>
    /// Depletion-risk horizon: an anomaly opens when the platform's ledger projects the reservoir below the
    /// low-reservoir threshold within this time. 72 h is the upper end of the 24–72 h in which baclofen withdrawal
    /// progresses (§0 item 8 [50]): a refill must be arranged within it. Default: 72 hours.
    /// </summary>
    public TimeSpan DepletionHorizon { get; set; } = TimeSpan.FromHours(72);

    /// <summary>
    /// Below this projected time the depletion risk is critical for every drug (for baclofen it always is, §3.7).
    /// 24 h is the lower end of the baclofen withdrawal window [50]. Default: 24 hours.
    /// </summary>
    public TimeSpan DepletionCriticalHorizon { get; set; } = TimeSpan.FromHours(24);

    /// <summary>
    /// A flow stall lasting longer than this is a risk factor for later over-infusion (§0 item 6 [20][21]); the
    /// evidence and summary say so. Default: 48 hours.
    /// </summary>
    public TimeSpan StallRiskDuration { get; set; } = TimeSpan.FromHours(48);

    /// <summary>
    /// Battery forecast horizon: the trend of <c>batteryPct</c> projecting End of Service within this time opens an
    /// info anomaly. ERI comes at least 90 days before EOS (§0 item 5 [3][6]); twice that leaves time to plan the
    /// replacement surgery before ERI. Default: 180 days.
    /// </summary>
    public TimeSpan BatteryForecastHorizon { get; set; } = TimeSpan.FromDays(180);

    /// <summary>Status reports (and days of trend) needed before the battery forecast is trusted. Default: 14.</summary>
    public int BatteryMinReports { get; set; } = 14;

    /// <summary>
    /// Silence window: no data from a pump for longer than this opens <c>silent</c>. Hubs send hourly; a day allows
    /// for ordinary outages (mean 6 h in the simulator) while staying well inside the 24–72 h baclofen withdrawal
    /// window [50]. Default: 24 hours.
    /// </summary>
    public TimeSpan SilentWindow { get; set; } = TimeSpan.FromHours(24);

    /// <summary>How often the silent-pump monitor queries the fleet. Default: 5 minutes.</summary>
    public TimeSpan SilentCheckInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Silence is not health: a pump that has sent nothing for this long is re-evaluated on time (depletion risk,
    /// battery forecast) by the fleet monitor when its ledger forecast nears the depletion horizon, and by a
    /// durable reminder every interval once it is flagged silent. Hubs send hourly. Default: 1 hour.
    /// </summary>
    public TimeSpan ReevaluateAfter { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// While seqs are missing, the flow and refill detectors (which compare consecutive readings and whole refill
    /// cycles) wait for the gap to fill, at most this long in event time: a refill or a reading still in transit would
    /// otherwise show as a deviation (a level jump without its refill). Stall and depletion never wait. Default: 48 hours.
    /// </summary>
    public TimeSpan IncompleteDataWait { get; set; } = TimeSpan.FromHours(48);

    /// <summary>Pumps the fleet monitor reads per page (it pages through all of them, oldest first).</summary>
    public int MonitorPageSize { get; set; } = 1000;

    /// <summary>Grain calls the fleet monitor makes at once (instead of one at a time).</summary>
    public int MonitorParallelism { get; set; } = 16;

    /// <summary>
    /// Cohort signal: smallest event count a cohort needs before it can signal; disproportionality practice uses
    /// N ≥ 3 ([S4][S5], §7.4). Default: 3.
    /// </summary>
    public int CohortMinCount { get; set; } = 3;

    /// <summary>
    /// Cohort signal: false-discovery rate for the exact Poisson tests of cohorts' rates against the rest of the fleet,
    /// controlled by Benjamini–Hochberg across every cohort × measure tested (a test signals when its adjusted q is
    /// below it); also the level of the lower bound in the evidence, 0.05 as in DELTA-style surveillance ([S1], §7.4).
    /// Default: 0.05.
    /// </summary>
    public double CohortAlpha { get; set; } = 0.05;

    /// <summary>How often the cohort job runs. Default: 1 hour.</summary>
    public TimeSpan CohortCheckInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// Cohort flow early warning: fewest pumps (one refill cycle each, the latest) a cohort needs before it is tested.
    /// A sign test of n pumps cannot reach p below 2⁻ⁿ, so fewer than 8 could never pass the corrected level anyway.
    /// Default: 8.
    /// </summary>
    public int CohortFlowMinPumps { get; set; } = 8;

    /// <summary>
    /// Cohort flow early warning: the deviation of a cohort's median flow factor that matters. Healthy pumps differ
    /// by a few percent (the ±14.5 % band is the labelled worst case, §0 item 2), and refills are planned with about
    /// 10 % of the reservoir to spare, so a systematic 5 % uses half of it. The sign test asks whether the cohort's
    /// median is beyond 1 ± this margin, not merely off 1. Default: 0.05.
    /// </summary>
    public double CohortFlowMargin { get; set; } = 0.05;

    /// <summary>
    /// Cohort flow early warning: false-discovery rate (Benjamini–Hochberg across every cohort × direction tested in a
    /// run). Stricter than <see cref="CohortAlpha"/> because a signal changes every forecast of the cohort. Default: 0.01.
    /// </summary>
    public double CohortFlowAlpha { get; set; } = 0.01;

    /// <summary>Cohort flow early warning: refill cycles older than this are not used (a fixed lot stays fixed). Default: 180 days.</summary>
    public TimeSpan CohortFlowWindow { get; set; } = TimeSpan.FromDays(180);

    /// <summary>
    /// Cohort flow early warning: smallest motor volume of a cycle whose flow factor is used: below 1 mL the ±0.1 mL
    /// syringe read-out of the residual is over 10 % of the ratio (§4). Default: 1 mL.
    /// </summary>
    public double CohortFlowMinCycleMl { get; set; } = 1.0;

    /// <summary>
    /// Whether pump grains run the per-pump detectors after each batch. Turn off only for a bulk backfill whose
    /// anomalies should be decided later (detector accumulators still fold, so turning it back on loses nothing). Default: true.
    /// </summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Whether the hosted fleet jobs (silent monitor, cohort job) run in this process. Default: true.</summary>
    public bool RunFleetJobs { get; set; } = true;

    /// <summary>The per-reading level noise to use: the online estimate shrunk towards the prior, never below the floor.</summary>
    public double LevelNoiseMl(long count, double estimatedVariance)
    {
        var variance = ((count * estimatedVariance) + (LevelNoisePriorReadings * LevelNoisePriorMl * LevelNoisePriorMl))
                       / Math.Max(1, count + LevelNoisePriorReadings);
        return Math.Max(LevelNoiseFloorMl, Math.Sqrt(Math.Max(0, variance)));
    }

    /// <summary>The pocket-fill threshold for a reservoir capacity: 20 mL and smaller use the small one.</summary>
    public double PocketFillThresholdMl(double capacityMl) =>
        capacityMl <= 20 ? PocketFillThresholdSmallMl : PocketFillThresholdLargeMl;
}
