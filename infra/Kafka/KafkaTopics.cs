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
        try
        {
            await admin.CreateTopicsAsync(names.Select(name => new TopicSpecification { Name = name, NumPartitions = partitions, ReplicationFactor = -1 }));
        }
        catch (CreateTopicsException e) when (e.Results.All(r => r.Error.Code is ErrorCode.NoError or ErrorCode.TopicAlreadyExists))
        {
            // Already there from an earlier run.
        }
    }
}
