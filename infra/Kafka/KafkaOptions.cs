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

    /// <summary>The brokers (PIPELINE_KAFKA). Left empty, the local dev servers start an embedded broker and fill it in.</summary>
    public string? BootstrapServers { get; set; }

    /// <summary>The brokers are librdkafka's mock cluster (set by the local dev servers): it keeps 5 MiB per partition and cannot describe its configs.</summary>
    public bool Embedded { get; set; }

    /// <summary>
    /// Which Kafka cluster this is, for state kept beside the events that names Kafka offsets: a digest of the bootstrap
    /// list as configured (order and case aside). An embedded broker starts empty each time on new random ports, so
    /// offsets recorded against an earlier one are never mistaken for its own. Not taken from live metadata, which
    /// leaves out brokers that are down: a rolling restart would otherwise look like a new cluster and replay the topic.
    /// </summary>
    public string BrokerIdentity
    {
        get
        {
            var brokers = (BootstrapServers ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(b => b.ToLowerInvariant()).Order(StringComparer.Ordinal);
            var digest = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(string.Join(",", brokers)));
            return "kafka:" + Convert.ToHexStringLower(digest)[..16];
        }
    }

    /// <summary>Names of the raw and dead-letter topics; deployments and tests may prefix them.</summary>
    public string RawTopic { get; set; } = Topics.Raw;
    public string RejectedTopic { get; set; } = Topics.Rejected;

    /// <summary>Partitions of the pipeline's topics; processors scale out up to this many instances.</summary>
    public int Partitions { get; set; } = 6;

    /// <summary>Brokers of the embedded cluster.</summary>
    public int EmbeddedBrokers { get; set; } = 3;

    /// <summary>An admin client on these brokers.</summary>
    public AdminClientConfig AdminConfig() => new() { BootstrapServers = BootstrapServers };

    public Dictionary<string, string> Producer { get; set; } = [];

    public Dictionary<string, string> Consumer { get; set; } = [];

    /// <summary>The pipeline's producer defaults (durable, ordered per key, batched) with configured overrides.</summary>
    public ProducerConfig ProducerConfig(string clientId)
    {
        var config = new ProducerConfig
        {
            BootstrapServers = BootstrapServers,
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
    public ConsumerConfig ConsumerConfig(string groupId, string clientId)
    {
        var config = new ConsumerConfig
        {
            BootstrapServers = BootstrapServers,
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
