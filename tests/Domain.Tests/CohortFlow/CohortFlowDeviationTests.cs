using PumpFleet.Contracts.Events;
using PumpFleet.Contracts.Views;
using PumpFleet.Domain.Detection;
using PumpFleet.Domain.Detection.CohortFlow;

namespace PumpFleet.Domain.Tests.CohortFlow;

public sealed class CohortFlowDeviationTests
{
    private static readonly DateTimeOffset Now = new(2026, 6, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly AnomalyDetectionOptions Options = new();

    /// <summary>A fleet of lots in one model; each pump's latest cycle factor drawn around <paramref name="centre"/> per lot.</summary>
    private static List<RefillFlowSample> Fleet(int seed, int lots, int pumpsPerLot, Func<int, double> centre, double sd = 0.03)
    {
        var r = new Random(seed);
        var samples = new List<RefillFlowSample>();
        for (var lot = 0; lot < lots; lot++)
        {
            for (var i = 0; i < pumpsPerLot; i++)
            {
                var noise = Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble()) * sd;
                samples.Add(new RefillFlowSample($"P{seed}-{lot}-{i}", $"M{lot % 2}", $"F{i % 3}", $"L{lot}", Now.AddDays(-r.Next(1, 90)), centre(lot) + noise, 5 + (r.NextDouble() * 20)));
            }
        }

        return samples;
    }

    [Fact]
    public void ALotWideFifteenPercent_Signals_WithTheLotsFactor()
    {
        var samples = Fleet(1, lots: 6, pumpsPerLot: 30, lot => lot == 2 ? 1.15 : 1.01);
        var results = CohortFlowDeviation.Evaluate(samples, Options, Now);

        var signals = results.Where(x => x.Signals).ToList();
        var lot = Assert.Single(signals);
        Assert.Equal(new CohortKey(CohortKey.Lot, "L2"), lot.Cohort);
        Assert.Equal(1, lot.Direction);
        Assert.InRange(lot.MedianFactor, 1.13, 1.17);
        Assert.True(lot.LowerFactor < lot.MedianFactor && lot.MedianFactor < lot.UpperFactor);
        Assert.True(lot.QValue <= Options.CohortFlowAlpha);
        Assert.Equal(results.Count * 2, lot.Tests);

        // The model it belongs to (a third of its pumps deviate) and the firmwares it crosses do not signal.
        Assert.All(results.Where(x => x.Cohort.Dimension != CohortKey.Lot), x => Assert.False(x.Signals));
        Assert.Contains("lot L2", lot.Summary(Options.CohortFlowMargin), StringComparison.Ordinal);
        Assert.Equal(1, lot.Evidence(Options.CohortFlowMargin)["falseDiscoveryControl"]);
    }

    [Fact]
    public void UnderInfusion_SignalsWithDirectionMinusOne()
    {
        var results = CohortFlowDeviation.Evaluate(Fleet(2, 4, 25, lot => lot == 0 ? 0.85 : 1.0), Options, Now);
        var s = Assert.Single(results, x => x.Signals);
        Assert.Equal(-1, s.Direction);
        Assert.Equal("L0", s.Cohort.Value);
        Assert.InRange(s.MedianFactor, 0.83, 0.87);
    }

    [Fact]
    public void TooFewPumps_AreNotTested_AndRefillsAreNotPumps()
    {
        // Seven pumps, each with twenty refills at +20 %: seven votes, below the minimum of eight.
        var samples = Enumerable.Range(0, 7).SelectMany(p => Enumerable.Range(0, 20)
            .Select(k => new RefillFlowSample($"S{p}", "M", "F", "L9", Now.AddDays(-k - 1), 1.2, 10))).ToList();
        Assert.Empty(CohortFlowDeviation.Evaluate(samples, Options, Now));
    }

    [Fact]
    public void OnlyEachPumpsLatestCycleInTheWindowCounts()
    {
        // Twelve pumps were +20 % long ago (outside the window) and are normal in their latest cycle.
        var samples = Enumerable.Range(0, 12).SelectMany(p => new[]
        {
            new RefillFlowSample($"S{p}", "M", "F", "L1", Now.AddDays(-200), 1.2, 10),
            new RefillFlowSample($"S{p}", "M", "F", "L1", Now.AddDays(-60), 1.2, 10),
            new RefillFlowSample($"S{p}", "M", "F", "L1", Now.AddDays(-5), 1.0 + (p * 0.001), 10),
        }).ToList();
        var results = CohortFlowDeviation.Evaluate(samples, Options, Now);
        Assert.All(results, x => Assert.False(x.Signals));
        Assert.All(results, x => Assert.Equal(12, x.Pumps));
    }

    [Fact]
    public void WildValues_AreOneVoteEach()
    {
        // A healthy lot with three pocket fills (factor 3: far less came back) does not signal: a mean would.
        var samples = Fleet(3, 3, 20, _ => 1.0);
        for (var i = 0; i < 3; i++)
        {
            samples[i] = samples[i] with { Factor = 3.0 };
        }

        Assert.All(CohortFlowDeviation.Evaluate(samples, Options, Now), x => Assert.False(x.Signals));
    }

    [Fact]
    public void SmallCyclesAndFutureSamples_AreIgnored()
    {
        var samples = Enumerable.Range(0, 12).Select(p => new RefillFlowSample($"S{p}", "M", "F", "L1", Now.AddDays(-3), 1.3, 0.5))
            .Concat(Enumerable.Range(0, 12).Select(p => new RefillFlowSample($"T{p}", "M", "F", "L2", Now.AddDays(3), 1.3, 10))).ToList();
        Assert.Empty(CohortFlowDeviation.Evaluate(samples, Options, Now));
    }

    [Fact]
    public void Multiplicity_KeepsABorderlineCohortAmongManyFromSignalling()
    {
        // Eight pumps all above the margin: p = 2⁻⁸ ≈ 0.0039 < 0.01 alone, but not after adjusting over many cohorts.
        var samples = Fleet(4, 12, 10, _ => 1.0, sd: 0.01).Where(s => s.Lot != "L0").ToList();
        samples.AddRange(Enumerable.Range(0, 8).Select(p => new RefillFlowSample($"B{p}", "M0", "F0", "L0", Now.AddDays(-2), 1.08, 10)));
        var results = CohortFlowDeviation.Evaluate(samples, Options, Now);
        var borderline = Assert.Single(results, x => x.Cohort.Value == "L0");
        Assert.Equal(1.0 / 256, borderline.PValue, 12);
        Assert.False(borderline.Signals);
        Assert.True(borderline.QValue > Options.CohortFlowAlpha);
    }

    /// <summary>
    /// Property: healthy fleets (each pump within a few percent, one in twenty wild) never signal. Fixed seeds, so
    /// the test is deterministic; a seed that ever fails is kept below as a named case.
    /// </summary>
    [Fact]
    public void HealthyFleets_DoNotSignal_Over200SeededFleets()
    {
        var falseSignals = 0;
        for (var seed = 100; seed < 300; seed++)
        {
            var samples = Fleet(seed, 10, 40, lot => 1 + ((lot - 5) * 0.004), sd: 0.04);
            var r = new Random(seed);
            for (var i = 0; i < samples.Count; i += 20)
            {
                samples[i] = samples[i] with { Factor = 0.5 + (r.NextDouble() * 2) };
            }

            falseSignals += CohortFlowDeviation.Evaluate(samples, Options, Now).Count(x => x.Signals);
        }

        Assert.Equal(0, falseSignals);
    }

    [Fact]
    public void RefillFlow_FactorOfACycle()
    {
        var check = new RefillCheck();
        check.OnRefill(new RefillPerformed { Seq = 1, At = Now, ExpectedResidualMl = 0, AspiratedResidualMl = 0, AddedMl = 20, Drug = "morphine", Concentration = new Concentration { Value = 10, Unit = "mg/mL" } }, 0);
        Assert.Null(RefillFlow.FactorOf(check, 1));   // the first refill closes no known cycle

        check.OnRefill(new RefillPerformed { Seq = 2, At = Now.AddDays(50), ExpectedResidualMl = 5, AspiratedResidualMl = 3.5, AddedMl = 20, Drug = "morphine", Concentration = new Concentration { Value = 10, Unit = "mg/mL" } }, 10);
        Assert.Equal(1.15, RefillFlow.FactorOf(check, 1)!.Value, 12);   // 1.5 mL more left than the motor's 10 mL
        Assert.Null(RefillFlow.FactorOf(check, 11));                      // a cycle under the minimum is noise
    }

    [Fact]
    public void CohortKey_StreamIdsRoundTrip_AndPumpsAreNotCohorts()
    {
        var key = new CohortKey(CohortKey.Firmware, "4.2.1");
        Assert.Equal("cohort-flow:firmware:4.2.1", key.StreamId);
        Assert.Equal(key, CohortKey.FromStreamId(key.StreamId));
        Assert.Null(CohortKey.FromStreamId("cohort:SM2-20:4.1.0:L2201"));
        Assert.Null(CohortKey.FromStreamId("cohort-flow:colour:red"));
        Assert.Null(CohortKey.FromStreamId("cohort-flow:lot:"));
        Assert.Null(CohortKey.FromStreamId("SN-0001"));
        Assert.True(new CohortKey(CohortKey.Lot, "L1").Contains("M", "F", "L1"));
        Assert.False(new CohortKey(CohortKey.Lot, "L1").Contains("M", "F", null));
    }

    [Fact]
    public void Correct_ShrinksTheRemainingTimeByTheFactor()
    {
        var from = Now;
        Assert.Equal(from.AddDays(8), CohortFlowCorrection.Correct(from.AddDays(10), from, 1.25));
        Assert.Equal(from.AddDays(12.5), CohortFlowCorrection.Correct(from.AddDays(10), from, 0.8));
        Assert.Equal(from.AddDays(-1), CohortFlowCorrection.Correct(from.AddDays(-1), from, 1.25));   // already reached
        Assert.Null(CohortFlowCorrection.Correct(null, from, 1.25));
    }

    [Fact]
    public void For_PicksTheLargestDeviationAmongTheCohortsThePumpIsIn()
    {
        var lot = new CohortFlowCorrection("a", new CohortKey(CohortKey.Lot, "L1"), 1.15, Now);
        var fw = new CohortFlowCorrection("b", new CohortKey(CohortKey.Firmware, "F"), 1.08, Now);
        var other = new CohortFlowCorrection("c", new CohortKey(CohortKey.Lot, "L2"), 1.5, Now);
        Assert.Same(lot, CohortFlowCorrection.For("M", "F", "L1", [fw, lot, other]));
        Assert.Same(fw, CohortFlowCorrection.For("M", "F", "L3", [fw, lot, other]));
        Assert.Null(CohortFlowCorrection.For("M", "G", "L3", [fw, lot, other]));
    }

    [Fact]
    public void Apply_CorrectsTheLevelAndTheRate_ButNotAStabilityRuleThatIsEarlier()
    {
        // Ledger: 12 mL left after 8 mL by the motor since the refill, 0.5 mL/day, low level 2 mL: low in 20 d, empty in 24 d.
        // At 1.25 the reservoir already holds 8 × 0.25 = 2 mL less (10 mL) and falls at 0.625 mL/day: low in 12.8 d, empty in 16 d.
        var c = new CohortFlowCorrection("cohort-flow:lot:L1:cohort-flow-deviation:3", new CohortKey(CohortKey.Lot, "L1"), 1.25, Now);
        var corrected = c.Apply(View(lowAt: Now.AddDays(20), dueAt: Now.AddDays(20), emptyAt: Now.AddDays(24)));
        Assert.Equal(Now.AddDays(12.8), corrected.LowReservoirAt);
        Assert.Equal(Now.AddDays(12.8), corrected.NextRefillDueAt);
        Assert.Equal(Now.AddDays(16), corrected.ForecastEmptyAt);
        Assert.Equal("lot L1", corrected.Cohort);
        Assert.Equal(c.AnomalyId, corrected.AnomalyId);

        // A ziconotide stability date 10 days out stays (the pump view's due date was the rule, earlier than the ledger).
        Assert.Equal(Now.AddDays(10), c.Apply(View(lowAt: Now.AddDays(20), dueAt: Now.AddDays(10), emptyAt: Now.AddDays(24))).NextRefillDueAt);
    }

    [Fact]
    public void Reaching_IsTheOriginWhenTheCorrectedLevelIsAlreadyBelow_AndNullWithoutARate()
    {
        var c = new CohortFlowCorrection("x", new CohortKey(CohortKey.Lot, "L1"), 1.5, Now);
        Assert.Equal(Now, c.Reaching(3, 10, 0.5, Now, 2));   // 3 − 10 × 0.5 < 2
        Assert.Null(c.Reaching(3, 10, 0, Now, 2));
        Assert.Null(c.Reaching(null, 10, 0.5, Now, 2));
        var under = new CohortFlowCorrection("y", new CohortKey(CohortKey.Lot, "L1"), 0.8, Now);
        Assert.Equal(Now.AddDays((12 + 1.6 - 2) / 0.4), under.Reaching(12, 8, 0.5, Now, 2));   // under-infusion: more left, later
    }

    [Fact]
    public void FromAnomaly_ReadsTheFactorOfAnOpenCohortFlowAnomalyOnly()
    {
        var a = new AnomalyView
        {
            Id = "x", Serial = "cohort-flow:lot:L1", Kind = AnomalyKinds.CohortFlowDeviation, Severity = "warning", Status = "open",
            DetectedAt = Now, Summary = "s", Evidence = new Dictionary<string, double> { ["factor"] = 1.15 },
        };
        Assert.Equal(1.15, CohortFlowCorrection.FromAnomaly(a)!.Factor);
        Assert.Null(CohortFlowCorrection.FromAnomaly(a with { Status = "resolved" }));
        Assert.Null(CohortFlowCorrection.FromAnomaly(a with { Kind = AnomalyKinds.CohortSignal }));
        Assert.Null(CohortFlowCorrection.FromAnomaly(a with { Evidence = new Dictionary<string, double>() }));
        Assert.Null(CohortFlowCorrection.FromAnomaly(a with { Serial = "SN1" }));
    }

    private static PumpView View(DateTimeOffset lowAt, DateTimeOffset dueAt, DateTimeOffset emptyAt) => new()
    {
        Serial = "SN1", Status = "ok", ActiveAlarms = [], OpenAnomalies = [], Gaps = [],
        Ledger = new LedgerView { EstimatedMl = 12, DeliveredSinceRefillMl = 8, ForecastRateMlPerDay = 0.5 }, LowReservoirMl = 2,
        LowReservoirAt = lowAt, NextRefillDueAt = dueAt, ForecastEmptyAt = emptyAt, ForecastFrom = Now, LastEventAt = Now,
    };
}
