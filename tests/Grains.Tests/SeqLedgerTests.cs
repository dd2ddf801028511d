using PumpFleet.Contracts.Views;
using PumpFleet.Domain.Pumps;

namespace PumpFleet.Grains.Tests;

public sealed class SeqLedgerTests
{
    [Fact]
    public void ThousandsOfGaps_AreTrackedAndFilledInAnyOrder()
    {
        // Every other seq of 1..40,001 arrives: 20,000 one-seq gaps. With a list scan per event this is quadratic
        // (hundreds of millions of steps); the interval tree keeps each step logarithmic.
        var ledger = new SeqLedger();
        for (long s = 1; s <= 40_001; s += 2)
        {
            ledger.MarkStored(s);
        }

        Assert.Equal(20_000, ledger.MissingCount);
        Assert.Equal(1, ledger.Watermark);
        Assert.Equal([new SeqRange(2, 2), new SeqRange(4, 4)], ledger.FirstMissing(2));
        Assert.Equal(SeqLedger.MaxMissingInAck, ledger.FirstMissing().Count);

        var late = Enumerable.Range(1, 20_000).Select(i => 2L * i).ToArray();
        new Random(11).Shuffle(late);
        foreach (var s in late.Take(19_999))
        {
            ledger.MarkStored(s);
        }

        var stillMissing = late[^1];
        Assert.Equal([new SeqRange(stillMissing, stillMissing)], ledger.Missing);
        Assert.Equal(stillMissing - 1, ledger.Watermark);
        Assert.False(ledger.IsStored(stillMissing));
        Assert.True(ledger.IsStored(stillMissing + 1));

        ledger.MarkLost(stillMissing, stillMissing);
        Assert.Equal(40_001, ledger.Watermark);
        Assert.Empty(ledger.Missing);
    }

    [Fact]
    public void RejectedAndLostSeqs_AreAccountedForButNotStored_AndAValidLateEventStillCounts()
    {
        var ledger = new SeqLedger();
        ledger.MarkStored(1);
        ledger.MarkRejected(2);     // directly above the horizon
        ledger.MarkStored(10);      // 3..9 missing
        ledger.MarkRejected(3);
        ledger.MarkLost(4, 6);

        Assert.Equal([new SeqRange(7, 9)], ledger.Missing);
        Assert.Equal(6, ledger.Watermark);
        Assert.False(ledger.IsStored(2));
        Assert.False(ledger.IsOpen(2));
        Assert.False(ledger.IsStored(5));

        ledger.MarkStored(5);       // a lost event turned up after all
        ledger.MarkStored(2);       // a corrected resend of a rejected seq
        Assert.True(ledger.IsStored(5));
        Assert.True(ledger.IsStored(2));
        Assert.Equal([new SeqRange(4, 4), new SeqRange(6, 6)], ledger.Lost);

        ledger.MarkLost(1, 20);     // covers stored, rejected, lost, missing and new seqs: only the open ones change
        Assert.Empty(ledger.Missing);
        Assert.Equal(20, ledger.Watermark);
        Assert.True(ledger.IsStored(10));
        Assert.Equal([new SeqRange(3, 3)], ledger.Rejected);
    }

    /// <summary>
    /// Model check with a fixed seed and budget: random operations against a plain per-seq array, comparing every
    /// observable after each step.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void RandomOperations_AgreeWithAPerSeqModel(int seed)
    {
        const int N = 300;
        var rng = new Random(seed);
        var model = new char[N + 2]; // '\0' unknown (above horizon), 'S' stored, 'M' missing, 'R' rejected, 'L' lost
        long horizon = 0;
        var ledger = new SeqLedger();

        void Extend(long to)
        {
            for (var s = horizon + 1; s <= to; s++)
            {
                model[s] = 'M';
            }

            horizon = Math.Max(horizon, to);
        }

        for (var step = 0; step < 2_000; step++)
        {
            var a = rng.Next(1, N);
            switch (rng.Next(4))
            {
                case 0:
                    ledger.MarkStored(a);
                    Extend(a - 1);
                    model[a] = 'S';
                    horizon = Math.Max(horizon, a);
                    break;
                case 1:
                    ledger.MarkRejected(a);
                    Extend(a);
                    if (model[a] == 'M')
                    {
                        model[a] = 'R';
                    }

                    break;
                case 2:
                    var b = Math.Min(N, a + rng.Next(0, 20));
                    ledger.MarkLost(a, b);
                    Extend(b);
                    for (var s = a; s <= b; s++)
                    {
                        if (model[s] == 'M')
                        {
                            model[s] = 'L';
                        }
                    }

                    break;
                default:
                    ledger.MarkMissing(a);
                    Extend(a);
                    break;
            }

            Assert.Equal(horizon, ledger.Horizon);
            for (var s = 1; s <= N; s++)
            {
                Assert.Equal(model[s] == 'S', ledger.IsStored(s));
                Assert.Equal(s > horizon || model[s] == 'M', ledger.IsOpen(s));
            }

            var firstMissing = Array.FindIndex(model, 1, (int)horizon, c => c == 'M');
            Assert.Equal(firstMissing < 0 ? horizon : firstMissing - 1, ledger.Watermark);
        }

        // The snapshot form round-trips.
        var json = System.Text.Json.JsonSerializer.Serialize(ledger, SnapshotJson.Options);
        var back = System.Text.Json.JsonSerializer.Deserialize<SeqLedger>(json, SnapshotJson.Options)!;
        Assert.Equal(json, System.Text.Json.JsonSerializer.Serialize(back, SnapshotJson.Options));
    }
}
