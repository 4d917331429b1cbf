using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Pipeline.Infra.Kafka;

/// <summary>Creates the topics that are missing, with CreateTopics (an embedded broker's are made through its native API beforehand).</summary>
public static class KafkaTopics
{
    public static async Task EnsureAsync(string bootstrapServers, int partitions, IEnumerable<string> topics)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrapServers }).Build();
        // Only what is missing: a broker that lacks CreateTopics (an embedded one) already has them.
        var existing = admin.GetMetadata(TimeSpan.FromSeconds(10)).Topics.Where(t => t.Error.Code == ErrorCode.NoError).Select(t => t.Topic).ToHashSet();
        var missing = topics.Where(n => !existing.Contains(n)).ToList();
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

/// <summary>The pipeline's topics exist before any stage starts, whoever runs the brokers.</summary>
internal sealed class KafkaTopicsInitializer(IOptions<KafkaOptions> options) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var kafka = options.Value;
        return KafkaTopics.EnsureAsync(kafka.BootstrapServers!, kafka.Partitions, [kafka.RawTopic, kafka.RejectedTopic]);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
