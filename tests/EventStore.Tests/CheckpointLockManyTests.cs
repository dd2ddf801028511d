using Npgsql;
using PumpFleet.TestSupport;

namespace PumpFleet.EventStore.Tests;

/// <summary>
/// Several checkpoints held by one transaction (<see cref="ICheckpointStore.LockManyAsync"/>, a projection's combined live
/// page, issue 15 h15w): created when missing, read under the lock, moved together by one statement or not at all, and
/// two holders of overlapping sets (named in any order) queue behind each other instead of deadlocking.
/// </summary>
public sealed class CheckpointLockManyTests(PostgresFixture pg) : EventStoreTestBase(pg)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task LockMany_CreatesReadsAndMovesEveryCheckpoint_InOneTransaction()
    {
        await Store.SaveCheckpointAsync("lm:a", new GlobalCheckpoint(5, 50), Ct);
        await using (var held = await Store.LockManyAsync(["lm:a", "lm:b"], [], static (_, _) => Task.CompletedTask, Ct))
        {
            Assert.Equal(new GlobalCheckpoint(5, 50), held.Positions["lm:a"]);
            Assert.Equal(GlobalCheckpoint.Start, held.Positions["lm:b"]);
            await using var batch = new NpgsqlBatch(held.Connection, held.Transaction);
            var advance = held.AdvanceManyCommand([("lm:a", new GlobalCheckpoint(7, 70)), ("lm:b", new GlobalCheckpoint(6, 61))]);
            batch.BatchCommands.Add(advance);
            await batch.ExecuteNonQueryAsync(Ct);
            Assert.Equal(2, advance.RecordsAffected);
            Assert.Throws<InvalidOperationException>(() => held.AdvanceManyCommand([("lm:c", new GlobalCheckpoint(1, 1))]));
            // Not committed: disposing rolls the moves back (the rows created by the lock too).
        }

        var stored = await Store.LoadCheckpointsAsync(["lm:a", "lm:b", "lm:none"], Ct);
        Assert.Equal(new GlobalCheckpoint(5, 50), stored["lm:a"]);
        Assert.Equal(GlobalCheckpoint.Start, stored["lm:b"]);
        Assert.Equal(GlobalCheckpoint.Start, stored["lm:none"]);

        await using (var held = await Store.LockManyAsync(["lm:b", "lm:a"], [], static (_, _) => Task.CompletedTask, Ct))
        {
            await using var batch = new NpgsqlBatch(held.Connection, held.Transaction);
            batch.BatchCommands.Add(held.AdvanceManyCommand([("lm:a", new GlobalCheckpoint(7, 70)), ("lm:b", new GlobalCheckpoint(6, 61))]));
            await batch.ExecuteNonQueryAsync(Ct);
            await held.CommitAsync(Ct);
        }

        stored = await Store.LoadCheckpointsAsync(["lm:a", "lm:b"], Ct);
        Assert.Equal(new GlobalCheckpoint(7, 70), stored["lm:a"]);
        Assert.Equal(new GlobalCheckpoint(6, 61), stored["lm:b"]);
        Assert.Equal(new GlobalCheckpoint(6, 61), await Store.LoadCheckpointAsync("lm:b", Ct));
    }

    [Fact]
    public async Task OverlappingHolders_NamedInOppositeOrders_QueueInsteadOfDeadlocking()
    {
        string[] forward = ["lm:1", "lm:2", "lm:3", "lm:4"];
        string[] backward = [.. forward.Reverse()];
        await using (var first = await Store.LockManyAsync(forward, [], static (_, _) => Task.CompletedTask, Ct))
        {
            await first.CommitAsync(Ct); // the rows exist from here on
        }

        // Many rounds of two holders that each move every checkpoint one step, named in opposite orders: the rows are
        // locked in name order, so the second waits for the first (no 40P01), reads its moves, and no step is lost.
        for (var round = 0; round < 20; round++)
        {
            await Task.WhenAll(StepAsync(forward), StepAsync(backward));
        }

        var stored = await Store.LoadCheckpointsAsync(forward, Ct);
        Assert.All(forward, n => Assert.Equal(new GlobalCheckpoint(40, 40), stored[n]));
    }

    // Reads every held position under the lock and moves each one step further, then commits.
    private async Task StepAsync(string[] names)
    {
        await using var held = await Store.LockManyAsync(names, [], static (_, _) => Task.CompletedTask, Ct);
        var moves = names.Select(n => (n, new GlobalCheckpoint(held.Positions[n].TransactionId + 1, held.Positions[n].Position + 1))).ToList();
        await using var batch = new NpgsqlBatch(held.Connection, held.Transaction);
        batch.BatchCommands.Add(held.AdvanceManyCommand(moves));
        await batch.ExecuteNonQueryAsync(Ct);
        await held.CommitAsync(Ct);
    }
}
