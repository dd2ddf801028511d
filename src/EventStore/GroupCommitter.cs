using System.Diagnostics;
using System.Threading.Channels;
using Npgsql;
using NpgsqlTypes;

namespace PumpFleet.EventStore;

/// <summary>
/// Group commit: appends of different streams that arrive while a commit is in flight are merged into the next
/// transaction (<c>pf_append_streams</c>, migration 042), so under load one commit serves many messages. Each stream's
/// append runs in its own subtransaction: its version conflict or duplicate is resolved and reported to its own caller
/// only, as a single append would (<see cref="WrongExpectedVersionException"/>, or <see cref="AppendResult.AlreadyStored"/>).
/// A failure of the transaction as a whole (connection lost, server down) fails every caller of the group: the commit
/// is then ambiguous for each, exactly as for a single append, and each caller's retry with the same event ids is
/// idempotent.
/// </summary>
public sealed class GroupCommitter : IAsyncDisposable, IDisposable
{
    // The exact path (042): a subtransaction per stream, so one stream's error is that stream's alone.
    private const string PerStreamSql = """
        SELECT stream_ord, inserted, error_state, error_message
        FROM pf_append_streams($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
        """;

    // The fast path (043): one INSERT for the whole group, no subtransaction; any error fails the statement as a whole
    // (nothing stored) and the group is run again on the exact path.
    private const string SetBasedSql = """
        SELECT stream_ord, inserted, error_state, error_message
        FROM pf_append_group($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
        """;

    // The fast path with the NOTIFY left to the caller (044): sent after the commit by the notifier (NotifyLoopAsync),
    // so the group's commit does not hold PostgreSQL's notification-queue lock across its WAL flush.
    private const string SetBasedNotifyAfterSql = """
        SELECT stream_ord, inserted, error_state, error_message
        FROM pf_append_group_notify_after_commit($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
        """;

    private readonly NpgsqlDataSource _dataSource;
    private readonly GroupCommitOptions _options;
    private readonly EventStoreInstruments? _instruments;
    private readonly Channel<Request> _queue = Channel.CreateUnbounded<Request>(new UnboundedChannelOptions { SingleReader = false });
    private readonly CancellationTokenSource _stop = new();
    private readonly Task[] _writers;

    // Log partitions (bit i: partition i) that got rows in groups committed since the notifier last sent their NOTIFY;
    // the writers set bits and signal, the notifier takes them all at once (several groups' commits, one NOTIFY each).
    private readonly Channel<bool> _notifySignal = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly Task? _notifier;
    private int _pendingPartitions;

    /// <summary>Starts <see cref="GroupCommitOptions.Writers"/> writers.</summary>
    public GroupCommitter(NpgsqlDataSource dataSource, GroupCommitOptions options, EventStoreInstruments? instruments = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var result = new GroupCommitOptionsValidator().Validate(null, options);
        if (result.Failed)
        {
            throw new ArgumentException(result.FailureMessage, nameof(options));
        }

        _dataSource = dataSource;
        _options = options;
        _instruments = instruments;
        _notifier = options.NotifyAfterCommit ? Task.Run(NotifyLoopAsync) : null;
        _writers = [.. Enumerable.Range(0, options.Writers).Select(_ => Task.Run(WriteLoopAsync))];
    }

    /// <summary>Queues an append for the next group and returns when its group has committed (or failed).</summary>
    public async Task<AppendResult> AppendAsync(StreamAppend append, CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(_stop.IsCancellationRequested, this);
        var request = new Request(append, Activity.Current);
        await using (ct.Register(static r => ((Request)r!).TryCancel(), request))
        {
            if (!_queue.Writer.TryWrite(request))
            {
                throw new ObjectDisposedException(nameof(GroupCommitter));
            }

            try
            {
                // The completion is set by a writer (or by the cancellation above); no context to deadlock on.
#pragma warning disable VSTHRD003
                return await request.Completion.Task;
#pragma warning restore VSTHRD003
            }
            finally
            {
                RecordWait(request);
            }
        }
    }

    // The caller's append span gets a child for the time its append waited for a writer (the other groups' commits),
    // so a latency budget shows queueing apart from the commit.
    private static void RecordWait(Request request)
    {
        if (Activity.Current is not { } caller || request.StartedAt == default)
        {
            return;
        }

        caller.SetTag("pumpfleet.group_streams", request.GroupSize);
        using (var wait = EventStoreTracing.Source.StartActivity("group commit wait", ActivityKind.Internal, caller.Context, startTime: request.QueuedAt))
        {
            wait?.SetEndTime(request.StartedAt);
        }

        // A shared group's commit runs in a trace of its own (linked), so a per-message budget would not see it: this
        // child covers the caller's time inside the group's transaction, from being taken into the group to being
        // told the outcome. A lone append's commit is already a child of its append span.
        if (request.GroupSize > 1 && request.CompletedAt != default)
        {
            using var run = EventStoreTracing.Source.StartActivity("group commit run", ActivityKind.Internal, caller.Context, startTime: request.StartedAt);
            run?.SetEndTime(request.CompletedAt);
        }

        // From the writer setting the outcome to the caller running again: the completion's way back (for a grain, its
        // activation's turn on the thread pool), which a budget otherwise shows only as append − wait − run.
        if (request.CompletedAt != default)
        {
            using var resume = EventStoreTracing.Source.StartActivity("group commit resume", ActivityKind.Internal, caller.Context, startTime: request.CompletedAt);
        }
    }

    /// <summary>Appends one group in one transaction on a connection of its own and completes each request.</summary>
    /// <remarks>
    /// With <paramref name="setBased"/> the group is appended by one statement (043) when no stream is in it twice;
    /// if that statement fails (a concurrent writer got between its check and its INSERT, a duplicate event id or seq,
    /// a payload that is not JSON, …) nothing of it was stored, and the group runs again through the per-stream
    /// function (042), which tells each stream its own outcome.
    /// <para>Given <paramref name="committed"/>, the set-based statement does not NOTIFY the log readers inside its
    /// transaction; the partitions that got rows are passed to it after the commit (bit i: partition i), once the
    /// callers have their outcomes, for a NOTIFY outside the transaction.</para>
    /// </remarks>
    internal static async Task ExecuteAsync(
        NpgsqlDataSource dataSource, IReadOnlyList<Request> group, EventStoreInstruments? instruments, bool setBased, CancellationToken ct,
        Action<int>? committed = null)
    {
        // Streams in a stable order by id: two groups that share streams (only a stale duplicate activation does that)
        // then take their row locks in the same order and cannot deadlock; one stream's appends keep their order.
        var ordered = group.OrderBy(r => r.Append.StreamId, StringComparer.Ordinal).ToArray();
        var links = ordered.Where(r => r.Caller is not null).Select(r => new ActivityLink(r.Caller!.Context)).ToArray();
        // A lone append's commit is a child of its append span (its trace shows the commit and Npgsql's command); a
        // group's commit serves many traces, so it starts its own and links each caller's append span.
        var parent = ordered.Length == 1 && ordered[0].Caller is { } only ? only.Context : default;
        using var activity = EventStoreTracing.Source.StartActivity("group commit", ActivityKind.Internal, parent, links: links);
        activity?.SetTag("pumpfleet.streams", ordered.Length);
        var started = Stopwatch.GetTimestamp();
        var n = ordered.Sum(r => r.Append.Events.Count);
        var streams = new string[ordered.Length];
        var expected = new long[ordered.Length];
        var counts = new int[ordered.Length];
        var schemas = new int?[ordered.Length];
        var states = new string?[ordered.Length];
        var keepUntil = new DateTime?[ordered.Length];
        var ids = new Guid[n];
        var types = new string[n];
        var seqs = new long?[n];
        var ats = new DateTime?[n];
        var recvs = new DateTime[n];
        var suspects = new bool[n];
        var datas = new string[n];
        var metas = new string?[n];
        var k = 0;
        for (var i = 0; i < ordered.Length; i++)
        {
            var a = ordered[i].Append;
            streams[i] = a.StreamId;
            expected[i] = a.ExpectedVersion;
            counts[i] = a.Events.Count;
            schemas[i] = a.Snapshot?.SchemaVersion;
            states[i] = a.Snapshot?.State;
            keepUntil[i] = a.Snapshot?.KeepCoversUntil?.UtcDateTime;
            foreach (var e in a.Events)
            {
                ids[k] = e.EventId;
                types[k] = e.Type;
                seqs[k] = e.Seq;
                ats[k] = e.DeviceTime?.UtcDateTime;
                recvs[k] = e.ReceivedAt.UtcDateTime;
                suspects[k] = e.ClockSuspect;
                datas[k] = e.Data;
                metas[k] = e.Metadata;
                k++;
            }
        }

        var outcomes = new (int Inserted, string? State, string? Message)[ordered.Length];
        try
        {
            await using var conn = await dataSource.OpenConnectionAsync(ct);
            // Sorted by id above, so a stream in the group twice has adjacent entries.
            var repeated = streams.Where((s, i) => i > 0 && string.Equals(s, streams[i - 1], StringComparison.Ordinal)).Any();
            var fast = setBased && !repeated;
            if (setBased && repeated)
            {
                instruments?.OnGroupFallback(FallbackReasons.StreamRepeated);
            }

            if (fast)
            {
                try
                {
                    await RunAsync(committed is not null ? SetBasedNotifyAfterSql : SetBasedSql);
                }
                catch (PostgresException e) when (conn.State == System.Data.ConnectionState.Open)
                {
                    // The statement failed as a whole, in autocommit: nothing of the group is stored.
                    activity?.SetTag("pumpfleet.group_fallback", e.SqlState);
                    instruments?.OnGroupFallback(FallbackReason(e));
                    fast = false;
                }
            }

            if (!fast)
            {
                await RunAsync(PerStreamSql);
            }

            async Task RunAsync(string sql)
            {
                await using var cmd = new NpgsqlCommand(sql, conn)
                {
                    Parameters =
                    {
                        new() { Value = streams },
                        new() { Value = expected },
                        new() { Value = counts },
                        new() { Value = ids },
                        new() { Value = types },
                        new() { Value = seqs },
                        new() { Value = ats, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz },
                        new() { Value = recvs, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz },
                        new() { Value = suspects },
                        new() { Value = datas },
                        new() { Value = metas, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text },
                        new() { Value = schemas, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer },
                        new() { Value = states, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text },
                        new() { Value = keepUntil, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz },
                    },
                };
                await using var r = await cmd.ExecuteReaderAsync(ct);
                while (await r.ReadAsync(ct))
                {
                    outcomes[r.GetInt32(0) - 1] = (r.GetInt32(1), r.IsDBNull(2) ? null : r.GetString(2), r.IsDBNull(3) ? null : r.GetString(3));
                }
            }

            // Committed (autocommit). Conflicts are told apart after the commit, per stream, as a single append does.
            var elapsed = Stopwatch.GetElapsedTime(started);
            for (var i = 0; i < ordered.Length; i++)
            {
                var request = ordered[i];
                var a = request.Append;
                var (inserted, state, message) = outcomes[i];
                try
                {
                    if (inserted == a.Events.Count && inserted > 0)
                    {
                        instruments?.OnAppended(inserted, elapsed);
                        request.Complete(new AppendResult(a.ExpectedVersion + inserted, AlreadyStored: false), ordered.Length);
                    }
                    else if (a.Events.Count == 0)
                    {
                        request.Complete(new AppendResult(a.ExpectedVersion, AlreadyStored: false), ordered.Length);
                    }
                    else if (inserted == -2)
                    {
                        instruments?.OnError("append");
                        request.Fail(new AppendFailedException(a.StreamId, state ?? "?", message ?? ""));
                    }
                    else
                    {
                        request.Complete(await ResolveConflictAsync(conn, a, instruments, ct), ordered.Length);
                    }
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    request.Fail(e);
                }
            }

            if (fast && committed is not null)
            {
                var mask = 0;
                for (var i = 0; i < streams.Length; i++)
                {
                    mask |= outcomes[i].Inserted > 0 ? 1 << Log.LogPartitioning.PartitionOf(streams[i]) : 0;
                }

                if (mask != 0)
                {
                    committed(mask);
                }
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            instruments?.OnError("append");
            activity?.SetStatus(ActivityStatusCode.Error, e.Message);
            foreach (var request in ordered)
            {
                request.Fail(e);
            }
        }
    }

    // The notifications 007's trigger would have sent inside the transactions: one per log partition that got rows,
    // for every group committed since the last round, on a connection of its own so no writer waits for it. In
    // autocommit and writing nothing, its transaction has no WAL to flush. Its failure is not the appends' (they are
    // committed and their callers told): a log reader then finds the rows at its next poll (Streaming:PollInterval).
    private void OnCommitted(int partitions)
    {
        Interlocked.Or(ref _pendingPartitions, partitions);
        _notifySignal.Writer.TryWrite(true);
    }

    private async Task NotifyLoopAsync()
    {
        try
        {
            while (await _notifySignal.Reader.WaitToReadAsync(_stop.Token))
            {
                _notifySignal.Reader.TryRead(out _);
                await NotifyPendingAsync(_stop.Token);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // Disposed: DisposeAsync sends what is left.
        }
    }

    private async Task NotifyPendingAsync(CancellationToken ct)
    {
        var mask = Interlocked.Exchange(ref _pendingPartitions, 0);
        if (mask == 0)
        {
            return;
        }

        var partitions = Enumerable.Range(0, Log.LogPartitioning.Count).Where(p => (mask & (1 << p)) != 0).ToArray();
        try
        {
            await using var cmd = _dataSource.CreateCommand($"SELECT pg_notify('{Log.LogNotificationListener.Channel}', p::text) FROM unnest($1::integer[]) AS p");
            cmd.Parameters.Add(new() { Value = partitions });
            await cmd.ExecuteNonQueryAsync(ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            Interlocked.Or(ref _pendingPartitions, mask); // stopping: DisposeAsync sends them
            throw;
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException or OperationCanceledException)
        {
            _instruments?.OnError("notify");
        }
    }

    /// <summary>Why a group left the set-based path (the <c>reason</c> label of the fallback counter).</summary>
    internal static class FallbackReasons
    {
        /// <summary>A stream is in the group twice: the set-based statement is not tried.</summary>
        public const string StreamRepeated = "stream-repeated";

        /// <summary>A stream's head was not at the version its append expects (another writer got there first).</summary>
        public const string VersionConflict = "version-conflict";

        /// <summary>A (stream, seq) of the group is already stored.</summary>
        public const string DuplicateSeq = "duplicate-seq";

        /// <summary>An event id of the group is already stored in its stream (a retried append).</summary>
        public const string DuplicateEventId = "duplicate-event-id";

        /// <summary>A payload or metadata that PostgreSQL does not take as JSON.</summary>
        public const string InvalidJson = "invalid-json";

        /// <summary>Any other error of the statement.</summary>
        public const string Other = "other";
    }

    // Told apart by the constraint 043 names when it raises (its own checks) or PostgreSQL names (the indexes), so an
    // operator can see whether the fallbacks are races between writers, retries or bad input.
    internal static string FallbackReason(PostgresException e) => e.ConstraintName switch
    {
        "pf_stream_heads_pkey" => FallbackReasons.VersionConflict,
        { } c when c.Contains("stream_version", StringComparison.Ordinal) => FallbackReasons.VersionConflict,
        { } c when c.Contains("stream_seq", StringComparison.Ordinal) => FallbackReasons.DuplicateSeq,
        { } c when c.Contains("event_id", StringComparison.Ordinal) => FallbackReasons.DuplicateEventId,
        _ => e.SqlState is PostgresErrorCodes.InvalidTextRepresentation or PostgresErrorCodes.InvalidParameterValue
            ? FallbackReasons.InvalidJson
            : FallbackReasons.Other,
    };

    // All event ids present means the batch is already stored, exactly once (an earlier ambiguous commit); otherwise a
    // concurrent writer got there first.
    private static async Task<AppendResult> ResolveConflictAsync(NpgsqlConnection conn, StreamAppend a, EventStoreInstruments? instruments, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "SELECT count(*), coalesce(max(version), 0) FROM pf_events WHERE stream_id = $1 AND event_id = ANY($2)", conn)
        {
            Parameters = { new() { Value = a.StreamId }, new() { Value = a.Events.Select(e => e.EventId).ToArray() } },
        };
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        if (r.GetInt64(0) == a.Events.Count)
        {
            return new AppendResult(r.GetInt64(1), AlreadyStored: true);
        }

        instruments?.OnError("append-conflict");
        throw new WrongExpectedVersionException(a.StreamId, a.ExpectedVersion, null);
    }

    private async Task WriteLoopAsync()
    {
        var reader = _queue.Reader;
        var group = new List<Request>(_options.MaxStreams);
        try
        {
            while (await reader.WaitToReadAsync(_stop.Token))
            {
                if (_options.Linger > TimeSpan.Zero)
                {
                    await Task.Delay(_options.Linger, _stop.Token);
                }

                group.Clear();
                while (group.Count < _options.MaxStreams && reader.TryRead(out var r))
                {
                    if (r.TryStart())
                    {
                        group.Add(r);
                    }
                }

                if (group.Count > 0)
                {
                    await ExecuteAsync(_dataSource, group, _instruments, _options.SetBased, CancellationToken.None,
                        _options.NotifyAfterCommit ? OnCommitted : null);
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // Disposed.
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }

        _queue.Writer.TryComplete();
        await _stop.CancelAsync();
        await Task.WhenAll(_notifier is null ? _writers : [.. _writers, _notifier]);
        if (_notifier is not null)
        {
            // The last groups' partitions (a writer may have marked them after the notifier stopped).
            await NotifyPendingAsync(CancellationToken.None);
        }

        while (_queue.Reader.TryRead(out var r))
        {
            r.Fail(new ObjectDisposedException(nameof(GroupCommitter)));
        }

        _stop.Dispose();
    }

    /// <inheritdoc />
    /// <remarks>For a container disposed synchronously: stops taking appends and fails the queued ones without waiting
    /// for a commit in flight (its callers get its outcome).</remarks>
    public void Dispose()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }

        _queue.Writer.TryComplete();
        _stop.Cancel();
        while (_queue.Reader.TryRead(out var r))
        {
            r.Fail(new ObjectDisposedException(nameof(GroupCommitter)));
        }
    }

    /// <summary>One caller's append waiting for, or in, a group.</summary>
    internal sealed class Request(StreamAppend append, Activity? caller)
    {
        private const int Queued = 0;
        private const int Started = 1;
        private const int Cancelled = 2;
        private int _state;

        public StreamAppend Append { get; } = append;

        public Activity? Caller { get; } = caller;

        public TaskCompletionSource<AppendResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public DateTime QueuedAt { get; } = DateTime.UtcNow;

        public DateTime StartedAt { get; private set; }

        public int GroupSize { get; private set; }

        /// <summary>Taken into a group: from now on the outcome is the group's (a commit cannot be cancelled).</summary>
        public bool TryStart()
        {
            StartedAt = DateTime.UtcNow;
            return Interlocked.CompareExchange(ref _state, Started, Queued) == Queued;
        }

        public void TryCancel()
        {
            if (Interlocked.CompareExchange(ref _state, Cancelled, Queued) == Queued)
            {
                Completion.TrySetCanceled();
            }
        }

        public DateTime CompletedAt { get; private set; }

        public void Complete(AppendResult result, int groupSize)
        {
            GroupSize = groupSize;
            CompletedAt = DateTime.UtcNow;
            Completion.TrySetResult(result);
        }

        public void Fail(Exception e)
        {
            CompletedAt = DateTime.UtcNow;
            Completion.TrySetException(e);
        }
    }
}
