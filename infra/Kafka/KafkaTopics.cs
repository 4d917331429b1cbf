using Confluent.Kafka;
using Confluent.Kafka.Admin;

namespace Pipeline.Infra.Kafka;

/// <summary>Creates the pipeline's topics: through the native API on the embedded broker, CreateTopics on real Kafka.</summary>
public static class KafkaTopics
{
    public static async Task EnsureAsync(string bootstrapServers, EmbeddedKafka? embedded, int partitions, IEnumerable<string> topics)
    {
        var names = topics.ToList();
        if (embedded is not null)
        {
            foreach (var topic in names) embedded.CreateTopic(topic, partitions);
            return;
        }
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrapServers }).Build();
        // Only what is missing: a broker that lacks CreateTopics (another process's embedded one) already has them.
        var existing = admin.GetMetadata(TimeSpan.FromSeconds(10)).Topics.Where(t => t.Error.Code == ErrorCode.NoError).Select(t => t.Topic).ToHashSet();
        var missing = names.Where(n => !existing.Contains(n)).ToList();
        if (missing.Count == 0) return;
        try
        {
            await admin.CreateTopicsAsync(missing.Select(name => new TopicSpecification { Name = name, NumPartitions = partitions, ReplicationFactor = -1 }));
        }
        catch (CreateTopicsException e) when (e.Results.All(r => r.Error.Code is ErrorCode.NoError or ErrorCode.TopicAlreadyExists))
        {
            // Already there from an earlier run.
        }
    }
}
