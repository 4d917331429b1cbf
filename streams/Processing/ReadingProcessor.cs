using System.Diagnostics;
using System.Globalization;
using Confluent.Kafka;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Core.Kafka;
using Pipeline.Core.Signals;
using Pipeline.Infra.Kafka;
using Pipeline.Infra.Postgres;
using Pipeline.Registry;

namespace Pipeline.Streams.Processing;

/// <summary>
/// A member of the processors' consumer group on telemetry.raw.v1. Per batch: parse and recover signers in parallel,
/// check registration and plausibility, decide duplicates, equivocation and teleports per device in offset order,
/// then append the events, the dead letters and the next offsets in one PostgreSQL transaction. The offsets live in
/// that transaction, so a crash anywhere replays from exactly where the events end: nothing lost, nothing twice.
/// </summary>
public sealed class ReadingProcessor(
    DeviceDirectory directory,
    ProcessingStore store,
    DeadLetterRelay relay,
    StreamsMetrics metrics,
    IOptions<ProcessorOptions> options,
    IOptions<KafkaOptions> kafka,
    TimeProvider clock,
    ILogger<ReadingProcessor> logger) : BackgroundService
{
    private readonly ProcessorOptions _options = options.Value;
    private readonly Dictionary<string, Fix> _fixes = new(StringComparer.Ordinal);
    private readonly List<RawMessage> _pending = [];
    private readonly List<TopicPartitionOffset> _outOfRange = [];
    private Task? _recording;
    private long _processed;

    /// <summary>Messages recorded since start: tests and benchmarks wait on it.</summary>
    public long Processed => Interlocked.Read(ref _processed);

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        // librdkafka's Consume blocks: the loop gets a thread of its own.
        Task.Factory.StartNew(() => RunAsync(stoppingToken), stoppingToken, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();

    private async Task RunAsync(CancellationToken stoppingToken)
    {
        await RetryAsync("schema", () => store.EnsureSchemaAsync(stoppingToken), stoppingToken);
        if (!store.AppendsSkipStreamKeyCheck)
            logger.LogInformation("PostgreSQL checks each appended event's stream again (foreign key): this role may not set session_replication_role. " +
                "GRANT SET ON PARAMETER session_replication_role to it to save about 4 µs of the server's CPU per reading");
        var topic = kafka.Value.RawTopic;
        var config = kafka.Value.ConsumerConfig(_options.GroupId, $"depin-streams-{Environment.ProcessId}");
        // An offset the broker no longer holds stops its partition with an error instead of a silent jump to the log
        // start: what retention deleted unread is counted before the partition goes on (ResumeOutOfRangeAsync).
        config.AutoOffsetReset = AutoOffsetReset.Error;
        using var consumer = new ConsumerBuilder<string, byte[]>(config)
            .SetLogHandler((_, m) => logger.Log(KafkaLog.Level(m.Level), "librdkafka {Facility}: {Message}", m.Facility, m.Message))
            .SetErrorHandler((_, e) => logger.Log(e.IsFatal ? LogLevel.Critical : LogLevel.Warning, "Kafka consumer: {Reason}", e.Reason))
            .SetPartitionsAssignedHandler((_, partitions) =>
            {
                // Start where the events end: the offsets committed with them, not Kafka's.
                var offsets = RetryAsync("offsets", () => store.OffsetsAsync(_options.GroupId, topic, stoppingToken), stoppingToken).GetAwaiter().GetResult();
                logger.LogInformation("Assigned partitions {Partitions}", string.Join(",", partitions.Select(p => p.Partition.Value)));
                return partitions.Select(p => new TopicPartitionOffset(p, offsets.TryGetValue(p.Partition.Value, out var next) ? new Offset(next) : Offset.Beginning));
            })
            .SetPartitionsRevokedHandler((_, partitions) => Release(partitions.Select(p => p.Partition.Value)))
            .SetPartitionsLostHandler((_, partitions) => Release(partitions.Select(p => p.Partition.Value)))
            .Build();
        consumer.Subscribe(topic);
        var lagChecked = Stopwatch.StartNew();
        List<RawMessage>? recorded = null;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                Collect(consumer, stoppingToken);
                if (_outOfRange.Count > 0) await ResumeOutOfRangeAsync(consumer, stoppingToken);
                var batch = _pending.ToList();
                _pending.Clear();
                // Two stages overlap: this batch's signatures are checked while the previous one is being recorded.
                var checking = batch.Count > 0 ? CheckAsync(batch, stoppingToken) : null;
                if (_recording is not null)
                {
                    await _recording;
                    _recording = null;
                    CommitToKafka(consumer, recorded!);
                }
                if (checking is not null)
                {
                    _recording = RecordWithRetryAsync(await checking, stoppingToken);
                    recorded = batch;
                }
                if (lagChecked.Elapsed > TimeSpan.FromSeconds(5))
                {
                    metrics.Lag(Lag(consumer));
                    lagChecked.Restart();
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            if (_recording is not null) await _recording.ContinueWith(_ => { }, TaskScheduler.Default);
            consumer.Close();
        }
    }

    /// <summary>Polls until the batch is full or the wait since its first message is over.</summary>
    private void Collect(IConsumer<string, byte[]> consumer, CancellationToken stoppingToken)
    {
        var started = Stopwatch.StartNew();
        while (_pending.Count < _options.BatchSize && !stoppingToken.IsCancellationRequested)
        {
            var wait = _pending.Count == 0 ? TimeSpan.FromMilliseconds(500) : _options.BatchWait - started.Elapsed;
            if (wait <= TimeSpan.Zero) break;
            ConsumeResult<string, byte[]>? result;
            try
            {
                result = consumer.Consume(wait);
            }
            catch (ConsumeException e) when (e.Error.Code == ErrorCode.Local_AutoOffsetReset)
            {
                // The partition stopped at an offset the broker no longer has; the loop looks at it before going on.
                _outOfRange.Add(e.ConsumerRecord.TopicPartitionOffset);
                break;
            }
            if (result is null)
            {
                if (_pending.Count > 0) break;
                continue;
            }
            if (_pending.Count == 0) started.Restart();
            _pending.Add(ToRawMessage(result));
        }
    }

    /// <summary>
    /// Partitions taken away go to their new owner, who starts from the offsets in the store: the batch being recorded
    /// finishes first (the rebalance waits for it), the messages not yet recorded are left to the new owner.
    /// </summary>
    private void Release(IEnumerable<int> partitions)
    {
        try
        {
            _recording?.GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning("The batch in flight at a rebalance failed: {Message}", e.Message);
        }
        var released = partitions.ToHashSet();
        _pending.RemoveAll(m => released.Contains(m.Partition));
        _outOfRange.RemoveAll(p => released.Contains(p.Partition.Value));
        lock (_fixes) _fixes.Clear();
        logger.LogInformation("Released partitions {Partitions}", string.Join(",", released));
    }

    /// <summary>
    /// Starts again the partitions stopped at an offset the broker no longer has. Below the log start, retention
    /// deleted messages no processor read — readings the edge acknowledged, now gone: they are counted
    /// (<c>pipeline_streams_readings_lost_to_retention_total</c>) and logged as an error, and the store's offset moves to
    /// the log start so that a restart does not count them again. Beyond the log end (the topic was deleted and made
    /// again) the partition is read from its start, as librdkafka's own reset to the earliest offset did.
    /// </summary>
    private async Task ResumeOutOfRangeAsync(IConsumer<string, byte[]> consumer, CancellationToken stoppingToken)
    {
        foreach (var stopped in _outOfRange.ToList())
        {
            WatermarkOffsets log;
            try
            {
                log = consumer.QueryWatermarkOffsets(stopped.TopicPartition, TimeSpan.FromSeconds(5));
            }
            catch (KafkaException e)
            {
                // Asked again after the next poll; the partition waits meanwhile.
                logger.LogWarning("Partition {Partition} of {Topic} stopped at offset {Offset}, which the broker no longer has, and its watermarks could not be read: {Reason}",
                    stopped.Partition.Value, stopped.Topic, stopped.Offset.Value, e.Error.Reason);
                continue;
            }
            var (lost, resumeAt) = Resume(stopped.Offset.Value, log);
            if (lost > 0)
            {
                logger.LogError("Kafka deleted {Count} messages of {Topic} partition {Partition} before any processor read them (retention): the processors' offset {Committed} is below the low watermark {LowWatermark}. Those readings are lost; going on from the low watermark",
                    lost, stopped.Topic, stopped.Partition.Value, stopped.Offset.Value, log.Low.Value);
                metrics.LostToRetention(stopped.Topic, stopped.Partition.Value, lost);
                await RetryAsync("offsets", () => store.AdvanceOffsetAsync(_options.GroupId, stopped.Topic, stopped.Partition.Value, resumeAt, stoppingToken), stoppingToken);
            }
            else
            {
                logger.LogWarning("Partition {Partition} of {Topic} stopped at offset {Offset} (the broker's log now {LowWatermark}..{HighWatermark}); nothing lost, going on from {Resume}",
                    stopped.Partition.Value, stopped.Topic, stopped.Offset.Value, log.Low.Value, log.High.Value, resumeAt);
            }
            // A stopped partition does not take a seek: it is assigned again, at the offset to go on from.
            consumer.IncrementalUnassign([stopped.TopicPartition]);
            consumer.IncrementalAssign([new TopicPartitionOffset(stopped.TopicPartition, resumeAt)]);
            _outOfRange.Remove(stopped);
        }
    }

    /// <summary>
    /// Where a partition that stopped at <paramref name="next"/> goes on, and how many messages retention deleted unread:
    /// below the log start, those up to it; beyond the log end, none (the log is another one), from its start; a logical
    /// offset (an offset lookup that failed) or one inside the log, none, from there again.
    /// </summary>
    public static (long Lost, Offset ResumeAt) Resume(long next, WatermarkOffsets log) =>
        next < 0 ? (0, new Offset(next))
        : next < log.Low.Value ? (log.Low.Value - next, log.Low)
        : next > log.High.Value ? (0, log.Low)
        : (0, new Offset(next));

    private RawMessage ToRawMessage(ConsumeResult<string, byte[]> result)
    {
        var receivedAt = result.Message.Headers.TryGetLastBytes(HeaderNames.ReceivedAt, out var header)
            && long.TryParse(header, NumberStyles.None, CultureInfo.InvariantCulture, out var ms)
                ? DateTimeOffset.FromUnixTimeMilliseconds(ms)
                : result.Message.Timestamp.UtcDateTime;
        return new RawMessage(result.Topic, result.Partition.Value, result.Offset.Value, result.Message.Key, result.Message.Value ?? [], receivedAt);
    }

    /// <summary>Everything about a batch that needs no other batch: parse and recover signers in parallel, look up the registry, check each reading alone.</summary>
    private async Task<Checked[]> CheckAsync(IReadOnlyList<RawMessage> batch, CancellationToken cancellation)
    {
        var parsed = new (SignedReading? Reading, Rejection? Rejection)[batch.Count];
        await Task.Run(() => Parallel.For(0, batch.Count, new ParallelOptions { MaxDegreeOfParallelism = _options.Parallelism }, i =>
        {
            var (reading, rejection) = ReadingValidator.Parse(batch[i], _options.Limits);
            parsed[i] = (reading, rejection ?? (reading is null ? null : ReadingValidator.CheckSigner(reading, Secp256k1.Default)));
        }), cancellation);

        var claimed = parsed.Where(p => p.Reading is not null && p.Rejection is null).Select(p => p.Reading!.Content.Device).ToList();
        var kinds = await RetryAsync("lookup", () => directory.LookupAsync(claimed, cancellation).AsTask(), cancellation);
        var checkedMessages = new Checked[batch.Count];
        var next = 0;
        for (var i = 0; i < batch.Count; i++)
        {
            var (reading, rejection) = parsed[i];
            checkedMessages[i] = reading is null || rejection is not null
                ? new Checked(batch[i], reading, null, rejection, false)
                : ReadingValidator.CheckAlone(batch[i], reading, kinds[next++], _options.Plausibility);
        }
        return checkedMessages;
    }

    /// <summary>
    /// Records a batch, waiting out outages. When PostgreSQL refuses what the batch carries, retrying cannot help: the
    /// batch is halved, in offset order, until each message it refuses stands alone; those are dead-lettered
    /// (<see cref="ReasonCode.Unstorable"/>) and everything around them is recorded. A bad message costs only itself.
    /// </summary>
    private async Task RecordWithRetryAsync(ArraySegment<Checked> batch, CancellationToken stoppingToken)
    {
        try
        {
            await RetryAsync("record", () => RecordAsync(batch, stoppingToken), stoppingToken);
        }
        catch (Exception e) when (DatabaseFailure.Classify(e) == FailureKind.Content && !stoppingToken.IsCancellationRequested)
        {
            if (batch.Count > 1)
            {
                logger.LogWarning("PostgreSQL refused a batch of {Count} ({Reason}); halving it to find the message", batch.Count, DatabaseFailure.Describe(e));
                var half = batch.Count / 2;
                await RecordWithRetryAsync(batch[..half], stoppingToken);
                await RecordWithRetryAsync(batch[half..], stoppingToken);
                return;
            }
            var message = batch[0];
            var rejection = new Rejection(ReasonCode.Unstorable, $"The event store refused this message ({DatabaseFailure.Describe(e)}); the rest of its batch was recorded.");
            logger.LogWarning("Dead-lettering {Source}: {Detail}", $"{message.Message.Topic}/{message.Message.Partition}/{message.Message.Offset}", rejection.Detail);
            // Only a dead letter: recording anything of the message for its device is what failed.
            Checked unstorable = new(message.Message, message.Reading, null, rejection, SignedByRegisteredDevice: false);
            await RetryAsync("record", () => RecordAsync([unstorable], stoppingToken), stoppingToken);
        }
    }

    private Task RetryAsync(string step, Func<Task> work, CancellationToken stoppingToken) =>
        RetryAsync(step, async () =>
        {
            await work();
            return true;
        }, stoppingToken);

    /// <summary>
    /// Runs a step until it succeeds. An outage (a restart, a dropped connection, a failover), whether Npgsql throws it
    /// or Marten wraps it, is waited out with growing pauses; the batch stays and its offsets do not move. A refusal of
    /// the content goes to the caller; anything else is a bug and stops the host.
    /// </summary>
    private async Task<T> RetryAsync<T>(string step, Func<Task<T>> work, CancellationToken stoppingToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await work();
            }
            catch (Exception e) when (DatabaseFailure.Classify(e) == FailureKind.Outage && !stoppingToken.IsCancellationRequested)
            {
                metrics.Retried(step);
                logger.LogWarning("The {Step} step failed (attempt {Attempt}): {Message}; trying again", step, attempt, e.Message);
                await Task.Delay(TimeSpan.FromSeconds(Math.Min(30, attempt)), clock, stoppingToken);
            }
        }
    }

    /// <summary>
    /// Decides duplicates, equivocation and teleports against the store, then records the batch in one transaction.
    /// The first try assumes the store holds none of the batch's readings, the usual case, and skips reading them: the
    /// inserts of their events and accepted seqs prove it (they store every one) or fall short, and then the batch is
    /// decided again against what the store holds — as it is at once when a device's own history rejected a reading, where the store's
    /// accepted seqs decide which reason applies.
    /// </summary>
    private async Task RecordAsync(IReadOnlyList<Checked> checkedMessages, CancellationToken cancellation)
    {
        var started = Stopwatch.GetTimestamp();
        var batch = checkedMessages.Select(c => c.Message).ToList();
        for (var attempt = 0; ; attempt++)
        {
            await using var connection = await store.OpenAsync(cancellation);
            await using var transaction = await connection.BeginTransactionAsync(cancellation);
            var assumeNew = attempt == 0;
            var (histories, outcomes) = await DecideAsync(connection, transaction, checkedMessages, withReadings: !assumeNew, cancellation);
            if (assumeNew && RejectedByHistory(checkedMessages, outcomes))
            {
                assumeNew = false;
                (histories, outcomes) = await DecideAsync(connection, transaction, checkedMessages, withReadings: true, cancellation);
            }
            var fixes = new Dictionary<string, Fix>(StringComparer.Ordinal);
            foreach (var history in histories.Values)
                if (history.LastFix is { } fix && (!_fixes.TryGetValue(history.Device!, out var known) || known != fix)) fixes[history.Device!] = fix;

            if (await store.RecordAsync(connection, transaction, outcomes, fixes, _options.GroupId, NextOffsets(batch), cancellation))
            {
                await transaction.CommitAsync(cancellation);
                lock (_fixes)
                {
                    foreach (var (device, fix) in fixes) _fixes[device] = fix;
                }
                Report(outcomes, Stopwatch.GetElapsedTime(started));
                relay.Notify();
                return;
            }
            await transaction.RollbackAsync(cancellation);
            if (assumeNew)
            {
                logger.LogDebug("The store already holds readings of this batch (a replay); deciding it against them");
                continue;
            }
            // Another instance recorded some of these readings meanwhile (a rebalance race): decide the batch again
            // against what it stored. That settles at once; should it not, pause rather than spin.
            logger.LogInformation("Another processor recorded readings of this batch meanwhile (attempt {Attempt}); deciding it again", attempt);
            if (attempt >= 3) await Task.Delay(TimeSpan.FromSeconds(Math.Min(30, attempt)), clock, cancellation);
        }
    }

    private async Task<(Dictionary<EthAddress, ReadingValidator.DeviceHistory> Histories, List<Outcome> Outcomes)> DecideAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<Checked> checkedMessages, bool withReadings, CancellationToken cancellation)
    {
        var histories = await store.HistoryAsync(connection, transaction, checkedMessages, _fixes, withReadings, cancellation);
        var outcomes = new List<Outcome>(checkedMessages.Count);
        foreach (var message in checkedMessages)
        {
            var history = message.Reading is { } reading && histories.TryGetValue(reading.Content.Device, out var known) ? known : new ReadingValidator.DeviceHistory();
            outcomes.Add(ReadingValidator.Decide(message, history, _options.Plausibility));
        }
        return (histories, outcomes);
    }

    /// <summary>Whether a reading was rejected by its device's history (seq conflict, teleport) rather than by a check of its own.</summary>
    private static bool RejectedByHistory(IReadOnlyList<Checked> checkedMessages, List<Outcome> outcomes)
    {
        for (var i = 0; i < outcomes.Count; i++)
        {
            if (outcomes[i].Verdict == Verdict.RejectedSigned && !ReferenceEquals(outcomes[i].Rejection, checkedMessages[i].Rejection)) return true;
        }
        return false;
    }

    private void Report(List<Outcome> outcomes, TimeSpan elapsed)
    {
        Span<int> verdicts = stackalloc int[Enum.GetValues<Verdict>().Length];
        foreach (var outcome in outcomes)
        {
            verdicts[(int)outcome.Verdict]++;
            if (outcome.Rejection is { } rejection && outcome.Verdict != Verdict.Duplicate) metrics.Rejected(rejection.Code.ToWire());
        }
        for (var verdict = 0; verdict < verdicts.Length; verdict++)
            if (verdicts[verdict] > 0) metrics.Processed((Verdict)verdict, verdicts[verdict]);
        metrics.Batch(outcomes.Count, elapsed);
        Interlocked.Add(ref _processed, outcomes.Count);
        logger.LogDebug("Batch of {Count}: {Accepted} accepted in {Elapsed} ms", outcomes.Count, verdicts[(int)Verdict.Accepted], elapsed.TotalMilliseconds);
    }

    /// <summary>Mirrors the offsets into Kafka for lag tools; the store's copy is the one that counts, so a refusal here is harmless.</summary>
    private void CommitToKafka(IConsumer<string, byte[]> consumer, IEnumerable<RawMessage> batch)
    {
        try
        {
            consumer.Commit(NextOffsets(batch).Select(p => new TopicPartitionOffset(p.Key.Topic, p.Key.Partition, p.Value)));
        }
        catch (KafkaException e)
        {
            logger.LogDebug("Mirroring offsets to Kafka failed: {Reason}", e.Error.Reason);
        }
    }

    private static Dictionary<(string Topic, int Partition), long> NextOffsets(IEnumerable<RawMessage> batch) =>
        batch.GroupBy(m => (m.Topic, m.Partition)).ToDictionary(g => g.Key, g => g.Max(m => m.Offset) + 1);

    private static long Lag(IConsumer<string, byte[]> consumer)
    {
        long lag = 0;
        foreach (var partition in consumer.Assignment)
        {
            var watermarks = consumer.GetWatermarkOffsets(partition);
            var position = consumer.Position(partition);
            if (watermarks.High.Value >= 0 && position.Value >= 0) lag += watermarks.High.Value - position.Value;
        }
        return lag;
    }
}
