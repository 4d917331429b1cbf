using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Pipeline.Infra.Kafka;

namespace Pipeline.Ingest.Gateway;

/// <summary>
/// Reads, in the background, where the processors are on the raw topic — their offsets as they mirror them to Kafka,
/// fetched without joining their group — and each partition's low and high watermarks, for <see cref="BacklogGate"/>.
/// At start it also learns what the broker keeps per partition: the configured value, the embedded broker's fixed 5 MiB,
/// or real Kafka's retention.bytes.
/// </summary>
public sealed class BacklogMonitor(BacklogGate gate, IOptions<KafkaOptions> kafka, IOptions<IngestOptions> options, TimeProvider clock, ILogger<BacklogMonitor> logger) : BackgroundService
{
    /// <summary>
    /// librdkafka's mock cluster (src/rdkafka_mock.c) drops a partition's oldest message sets once it holds more than
    /// 5 MiB of them (or 100,000 sets), as it appends; the size is fixed, not configurable.
    /// </summary>
    public const long EmbeddedRetentionBytes = 5L * 1024 * 1024;

    private readonly BacklogOptions _options = options.Value.Backlog;
    private readonly string _topic = kafka.Value.RawTopic;
    private readonly IAdminClient _admin = new AdminClientBuilder(kafka.Value.AdminConfig())
        .SetLogHandler((_, m) => logger.Log(KafkaLog.Level(m.Level) > LogLevel.Information ? LogLevel.Information : LogLevel.Debug, "librdkafka {Facility}: {Message}", m.Facility, m.Message))
        .Build();
    private readonly Dictionary<int, long> _reportedLoss = [];
    private bool _failing;

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        gate.SetRetention(await RetentionAsync(), _options.Headroom);
        logger.LogInformation("The edge refuses readings once a partition of {Topic} holds {Limit} bytes not yet processed by {Group} (the broker keeps {Retention})",
            _topic, gate.LimitBytes?.ToString("N0") ?? "any number of", _options.GroupId, gate.RetentionBytes?.ToString("N0") ?? "everything");
        // Known before the first request if the broker answers; otherwise requests get 503 until it does.
        try
        {
            await RefreshAsync(cancellationToken);
        }
        catch (KafkaException e)
        {
            Failed(e);
        }
        await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(_options.RefreshInterval, clock, stoppingToken);
                await RefreshAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (KafkaException e)
            {
                // The last offsets stay: readings acknowledged since keep adding to them, so the estimate only errs high.
                Failed(e);
            }
        }
    }

    private async Task RefreshAsync(CancellationToken cancellation)
    {
        var metadata = _admin.GetMetadata(_topic, TimeSpan.FromSeconds(5)).Topics.Single();
        if (metadata.Error.IsError) throw new KafkaException(metadata.Error);
        var partitions = metadata.Partitions.Select(p => new TopicPartition(_topic, p.PartitionId)).ToList();
        var timeout = new ListOffsetsOptions { RequestTimeout = TimeSpan.FromSeconds(5) };
        // The group's committed offsets first: readings acknowledged meanwhile then count in both, never in neither.
        var committed = (await _admin.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions(_options.GroupId, partitions)],
                new ListConsumerGroupOffsetsOptions { RequestTimeout = TimeSpan.FromSeconds(5) }))
            .Single().Partitions.ToDictionary(p => p.Partition.Value, p => p.Offset.Value);
        var low = (await _admin.ListOffsetsAsync(partitions.Select(p => new TopicPartitionOffsetSpec { TopicPartition = p, OffsetSpec = OffsetSpec.Earliest() }), timeout))
            .ResultInfos.ToDictionary(r => r.TopicPartitionOffsetError.Partition.Value, r => r.TopicPartitionOffsetError.Offset.Value);
        var high = (await _admin.ListOffsetsAsync(partitions.Select(p => new TopicPartitionOffsetSpec { TopicPartition = p, OffsetSpec = OffsetSpec.Latest() }), timeout))
            .ResultInfos.ToDictionary(r => r.TopicPartitionOffsetError.Partition.Value, r => r.TopicPartitionOffsetError.Offset.Value);
        cancellation.ThrowIfCancellationRequested();
        foreach (var partition in partitions.Select(p => p.Partition.Value))
        {
            var processed = committed.GetValueOrDefault(partition, -1);
            if (processed >= 0 && processed < low[partition] && _reportedLoss.GetValueOrDefault(partition, -1) != low[partition])
            {
                _reportedLoss[partition] = low[partition];
                logger.LogError("Partition {Partition} of {Topic} lost offsets {From}..{To} before {Group} processed them: the broker evicted them", partition, _topic, processed, low[partition] - 1, _options.GroupId);
            }
            gate.Refresh(partition, processed, low[partition], high[partition]);
        }
        gate.MarkKnown();
        if (_failing) logger.LogInformation("The processors' offsets on {Topic} can be read again", _topic);
        _failing = false;
    }

    /// <summary>The bytes the broker keeps per partition of the raw topic; null when it keeps everything.</summary>
    private async Task<long?> RetentionAsync()
    {
        if (_options.RetentionBytes is { } configured) return configured < 0 ? null : configured;
        if (kafka.Value.Embedded) return EmbeddedRetentionBytes;
        try
        {
            var described = await _admin.DescribeConfigsAsync([new ConfigResource { Type = ResourceType.Topic, Name = _topic }],
                new DescribeConfigsOptions { RequestTimeout = TimeSpan.FromSeconds(10) });
            var retention = long.Parse(described.Single().Entries["retention.bytes"].Value, System.Globalization.CultureInfo.InvariantCulture);
            return retention < 0 ? null : retention;
        }
        catch (KafkaException e)
        {
            // The embedded broker of another process (depin ingest joining depin up) cannot describe configs: assume the
            // smallest retention there is, and say how to set the real one.
            logger.LogWarning("The broker did not tell {Topic}'s retention.bytes ({Reason}); assuming the embedded broker's {Bytes} bytes per partition. Set Ingest:Backlog:RetentionBytes for a broker that keeps more",
                _topic, e.Error.Reason, EmbeddedRetentionBytes);
            return EmbeddedRetentionBytes;
        }
    }

    private void Failed(KafkaException e)
    {
        if (!_failing) logger.LogWarning("Reading the processors' offsets on {Topic} failed: {Reason}; the edge keeps its last estimate", _topic, e.Error.Reason);
        _failing = true;
    }

    public override void Dispose()
    {
        _admin.Dispose();
        base.Dispose();
    }
}
