using System.Diagnostics;
using System.Globalization;
using System.Text;
using Confluent.Kafka;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Pipeline.Core.Kafka;
using Pipeline.Infra.Kafka;
using Pipeline.Infra.Postgres;

namespace Pipeline.Streams.Processing;

/// <summary>
/// Moves dead letters from the store (written in the processors' transactions) to telemetry.rejected.v1, exactly once:
/// one relay at a time holds an advisory lock, and every query of its term runs on the session holding it, so a relay
/// whose session is gone cannot mark, nor fetch another page, beside its successor. A row is marked written after the
/// broker acknowledged it; a relay taking over lets its predecessor's last sends land or expire, then reads the topic
/// from the last verified offsets, so letters sent just before a crash or a lost session are not sent twice.
/// </summary>
public sealed class DeadLetterRelay(LeaderElection leaders, ProcessingStore store, StreamsMetrics metrics, IOptions<KafkaOptions> kafka, ILogger<DeadLetterRelay> logger) : BackgroundService
{
    /// <summary>A relay's send gives up after this, whatever Kafka:Producer says: it bounds how long a page can stay in flight.</summary>
    private static readonly TimeSpan SendTimeout = TimeSpan.FromSeconds(15);

    /// <summary>How long a relay taking over waits before reading the topic: longer than any send of its predecessor can last.</summary>
    private static readonly TimeSpan TakeoverWait = SendTimeout + TimeSpan.FromSeconds(5);

    private readonly SemaphoreSlim _wake = new(0);

    public void Notify()
    {
        if (_wake.CurrentCount == 0) _wake.Release();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                // Inside the retry: PostgreSQL restarting while this process starts is an outage to wait out, not an end.
                await store.EnsureSchemaAsync(stoppingToken);
                // The lead lives as long as this session; it is used for everything below, so losing it fails the work.
                await using var session = await leaders.TryLeadAsync($"depin:dead-letter-relay:{store.Schema}", stoppingToken);
                if (session is null)
                {
                    await Task.Delay(TimeSpan.FromSeconds(5), stoppingToken);
                    continue;
                }
                var config = kafka.Value.ProducerConfig("depin-dead-letters");
                config.MessageTimeoutMs = (int)SendTimeout.TotalMilliseconds;
                using var producer = new ProducerBuilder<string?, byte[]>(config).Build();
                await ReconcileAsync(session, stoppingToken);
                while (!stoppingToken.IsCancellationRequested)
                {
                    if (await RelayAsync(session, producer, stoppingToken) == 0) await _wake.WaitAsync(TimeSpan.FromMilliseconds(500), stoppingToken);
                }
            }
            catch (Exception e) when ((e is NpgsqlException or KafkaException or TimeoutException || DatabaseFailure.Classify(e) == FailureKind.Outage) && !stoppingToken.IsCancellationRequested)
            {
                // Whatever was sent and not marked is found by the next term's reconcile.
                logger.LogWarning("Dead-letter relay interrupted: {Message}; retrying", e.Message);
                await Task.Delay(TimeSpan.FromSeconds(2), stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
        }
    }

    /// <summary>Marks as written the pending letters that a previous relay delivered but could not mark before it stopped.</summary>
    private async Task ReconcileAsync(NpgsqlConnection session, CancellationToken cancellation)
    {
        var pending = new HashSet<string>(StringComparer.Ordinal);
        await using (var select = new NpgsqlCommand($"SELECT source_topic || '/' || source_partition || '/' || source_offset FROM {store.Schema}.dead_letters WHERE broker = $1 AND NOT written", session) { Parameters = { new() { Value = store.Broker } } })
        await using (var reader = await select.ExecuteReaderAsync(cancellation))
        {
            while (await reader.ReadAsync(cancellation)) pending.Add(reader.GetString(0));
        }
        if (pending.Count == 0) return;

        // A predecessor whose session dropped may still have a page on its way to the broker: it lands or expires
        // within its send timeout, and only then does the topic say for certain what was delivered.
        logger.LogInformation("{Count} dead letters pending at takeover; reconciling in {Wait} s", pending.Count, TakeoverWait.TotalSeconds);
        await Task.Delay(TakeoverWait, cancellation);
        var topic = kafka.Value.RejectedTopic;
        var checkpoints = await CheckpointsAsync(session, topic, cancellation);
        var config = kafka.Value.ConsumerConfig("depin-dead-letter-reconcile", "depin-dead-letter-reconcile");
        config.EnablePartitionEof = true;
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(config).Build();
        using var admin = new AdminClientBuilder(kafka.Value.AdminConfig()).Build();
        var partitions = admin.GetMetadata(topic, TimeSpan.FromSeconds(10)).Topics.Single().Partitions.Select(p => p.PartitionId).ToList();
        consumer.Assign(partitions.Select(p => new TopicPartitionOffset(topic, p, checkpoints.TryGetValue(p, out var from) ? new Offset(from) : Offset.Beginning)));
        var delivered = new List<string>();
        var ended = new HashSet<int>();
        var reading = Stopwatch.StartNew();
        while (ended.Count < partitions.Count && reading.Elapsed < TimeSpan.FromSeconds(60))
        {
            var result = consumer.Consume(TimeSpan.FromMilliseconds(500));
            if (result is null) continue;
            if (result.IsPartitionEOF)
            {
                ended.Add(result.Partition.Value);
                continue;
            }
            if (result.Message.Headers.TryGetLastBytes(HeaderNames.Source, out var source) && pending.Contains(Encoding.UTF8.GetString(source)))
                delivered.Add(Encoding.UTF8.GetString(source));
        }
        if (ended.Count < partitions.Count) throw new TimeoutException("Reading the dead-letter topic to reconcile did not reach its end within 60 s.");
        if (delivered.Count > 0)
        {
            await using var mark = new NpgsqlCommand($"UPDATE {store.Schema}.dead_letters SET written = true WHERE broker = $2 AND source_topic || '/' || source_partition || '/' || source_offset = ANY($1)", session)
            {
                Parameters = { new() { Value = delivered.ToArray() }, new() { Value = store.Broker } },
            };
            await mark.ExecuteNonQueryAsync(cancellation);
            logger.LogInformation("Reconciled {Count} dead letters delivered before the last relay stopped", delivered.Count);
        }
    }

    /// <summary>Sends one page of pending letters; returns how many went out.</summary>
    private async Task<int> RelayAsync(NpgsqlConnection session, IProducer<string?, byte[]> producer, CancellationToken cancellation)
    {
        var letters = new List<(long Id, string Source, Message<string?, byte[]> Message)>();
        await using (var select = new NpgsqlCommand($"""
            SELECT id, source_topic, source_partition, source_offset, device, reason, detail, value, received_at
            FROM {store.Schema}.dead_letters WHERE broker = $1 AND NOT written ORDER BY id LIMIT 1000
            """, session) { Parameters = { new() { Value = store.Broker } } })
        await using (var reader = await select.ExecuteReaderAsync(cancellation))
        {
            while (await reader.ReadAsync(cancellation))
            {
                var source = $"{reader.GetString(1)}/{reader.GetInt32(2)}/{reader.GetInt64(3)}";
                letters.Add((reader.GetInt64(0), source, new Message<string?, byte[]>
                {
                    Key = reader.IsDBNull(4) ? null : reader.GetString(4),
                    Value = (byte[])reader[7],
                    Headers = new Headers
                    {
                        { HeaderNames.Reason, Encoding.UTF8.GetBytes(reader.GetString(5)) },
                        { HeaderNames.Detail, Encoding.UTF8.GetBytes(reader.GetString(6)) },
                        { HeaderNames.Source, Encoding.UTF8.GetBytes(source) },
                        { HeaderNames.ReceivedAt, Encoding.ASCII.GetBytes(reader.GetFieldValue<DateTimeOffset>(8).ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture)) },
                    },
                }));
            }
        }
        if (letters.Count == 0) return 0;

        var topic = kafka.Value.RejectedTopic;
        var results = await Task.WhenAll(letters.Select(l => producer.ProduceAsync(topic, l.Message, cancellation)));
        await using var transaction = await session.BeginTransactionAsync(cancellation);
        await using (var mark = new NpgsqlCommand($"UPDATE {store.Schema}.dead_letters SET written = true WHERE id = ANY($1)", session, transaction))
        {
            mark.Parameters.Add(new NpgsqlParameter { Value = letters.Select(l => l.Id).ToArray() });
            await mark.ExecuteNonQueryAsync(cancellation);
        }
        // Everything below these offsets is accounted for: the next reconcile starts here.
        await using (var checkpoint = new NpgsqlCommand($"""
            INSERT INTO {store.Schema}.dead_letter_checkpoints (broker, topic, partition, verified_offset)
            SELECT $4, $1, * FROM unnest($2::int[], $3::bigint[])
            ON CONFLICT (broker, topic, partition) DO UPDATE SET verified_offset = GREATEST({store.Schema}.dead_letter_checkpoints.verified_offset, EXCLUDED.verified_offset)
            """, session, transaction))
        {
            var ends = results.GroupBy(r => r.Partition.Value).ToDictionary(g => g.Key, g => g.Max(r => r.Offset.Value) + 1);
            checkpoint.Parameters.Add(new NpgsqlParameter { Value = topic });
            checkpoint.Parameters.Add(new NpgsqlParameter { Value = ends.Keys.ToArray() });
            checkpoint.Parameters.Add(new NpgsqlParameter { Value = ends.Values.ToArray() });
            checkpoint.Parameters.Add(new NpgsqlParameter { Value = store.Broker });
            await checkpoint.ExecuteNonQueryAsync(cancellation);
        }
        await transaction.CommitAsync(cancellation);
        metrics.DeadLettersWritten(letters.Count);
        return letters.Count;
    }

    private async Task<Dictionary<int, long>> CheckpointsAsync(NpgsqlConnection session, string topic, CancellationToken cancellation)
    {
        await using var command = new NpgsqlCommand($"SELECT partition, verified_offset FROM {store.Schema}.dead_letter_checkpoints WHERE broker = $2 AND topic = $1", session)
        {
            Parameters = { new() { Value = topic }, new() { Value = store.Broker } },
        };
        var checkpoints = new Dictionary<int, long>();
        await using var reader = await command.ExecuteReaderAsync(cancellation);
        while (await reader.ReadAsync(cancellation)) checkpoints[reader.GetInt32(0)] = reader.GetInt64(1);
        return checkpoints;
    }
}
