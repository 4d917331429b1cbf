using Confluent.Kafka;
using Pipeline.Core.Kafka;

namespace Pipeline.Infra.Kafka;

/// <summary>
/// The broker and client settings, bound from the "Kafka" section; PIPELINE_KAFKA sets BootstrapServers.
/// Producer and Consumer hold librdkafka properties by their own names (e.g. Kafka:Producer:linger.ms) and
/// override the pipeline's defaults.
/// </summary>
public sealed class KafkaOptions
{
    public const string Section = "Kafka";

    /// <summary>Real brokers to use. Empty: start the embedded broker.</summary>
    public string? BootstrapServers { get; set; }

    /// <summary>Names of the raw and dead-letter topics; deployments and tests may prefix them.</summary>
    public string RawTopic { get; set; } = Topics.Raw;
    public string RejectedTopic { get; set; } = Topics.Rejected;

    /// <summary>Partitions of the pipeline's topics; processors scale out up to this many instances.</summary>
    public int Partitions { get; set; } = 6;

    /// <summary>Brokers of the embedded cluster.</summary>
    public int EmbeddedBrokers { get; set; } = 3;

    public Dictionary<string, string> Producer { get; set; } = [];

    public Dictionary<string, string> Consumer { get; set; } = [];

    /// <summary>The pipeline's producer defaults (durable, ordered per key, batched) with configured overrides.</summary>
    public ProducerConfig ProducerConfig(string bootstrapServers, string clientId)
    {
        var config = new ProducerConfig
        {
            BootstrapServers = bootstrapServers,
            ClientId = clientId,
            Acks = Acks.All,
            EnableIdempotence = true,
            LingerMs = 5,
            BatchSize = 512 * 1024,
            CompressionType = CompressionType.Lz4,
            // Give up on a message after 30 s rather than librdkafka's 5 minutes, so callers learn of an outage.
            MessageTimeoutMs = 30_000,
        };
        foreach (var (key, value) in Producer) config.Set(key, value);
        return config;
    }

    /// <summary>Consumer defaults: offsets stored by the application only after its work is durable.</summary>
    public ConsumerConfig ConsumerConfig(string bootstrapServers, string groupId, string clientId)
    {
        var config = new ConsumerConfig
        {
            BootstrapServers = bootstrapServers,
            GroupId = groupId,
            ClientId = clientId,
            EnableAutoCommit = false,
            EnableAutoOffsetStore = false,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            PartitionAssignmentStrategy = PartitionAssignmentStrategy.CooperativeSticky,
            // A short session: the embedded broker holds a rebalance for session timeout − 1 s.
            SessionTimeoutMs = 6_000,
            HeartbeatIntervalMs = 1_000,
            FetchWaitMaxMs = 100,
        };
        foreach (var (key, value) in Consumer) config.Set(key, value);
        return config;
    }
}
