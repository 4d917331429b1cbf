using System.Diagnostics;
using Confluent.Kafka;
using Pipeline.Core.Kafka;
using Pipeline.Infra.Kafka;

namespace Pipeline.Tests.Integration.Foundation;

[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class KafkaTests(StackFixture fixture)
{
    private KafkaOptions Kafka => new() { BootstrapServers = fixture.KafkaBootstrapServers };

    [Fact]
    public async Task ProduceAndConsume_WithConsumerGroup_DeliversEachMessageOnceInKeyOrder()
    {
        var topic = await fixture.CreateTopicAsync("group", partitions: 3);
        using (var producer = new ProducerBuilder<string, string>(Kafka.ProducerConfig("test")).Build())
        {
            for (var i = 0; i < 300; i++)
            {
                var result = await producer.ProduceAsync(topic, new Message<string, string> { Key = $"device-{i % 7}", Value = $"{i}" });
                Assert.Equal(PersistenceStatus.Persisted, result.Status);
            }
        }

        var group = "group-" + Guid.NewGuid().ToString("N");
        var seen = Consume(topic, group, expected: 300);
        Assert.Equal(300, seen.Count);
        Assert.Equal(Enumerable.Range(0, 300), seen.Select(m => int.Parse(m.Value)).Order());
        foreach (var device in seen.GroupBy(m => m.Key))
        {
            var values = device.Select(m => int.Parse(m.Value)).ToList();
            Assert.Equal(values.Order(), values);
        }

        // The group committed its offsets: a new member of the same group finds nothing left to read.
        Assert.Empty(Consume(topic, group, expected: 0));
    }

    [Fact]
    public async Task PipelineTopics_ExistWithTheConfiguredPartitions()
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = fixture.KafkaBootstrapServers }).Build();
        var metadata = admin.GetMetadata(TimeSpan.FromSeconds(10));
        foreach (var topic in Topics.All)
        {
            var found = Assert.Single(metadata.Topics, t => t.Topic == topic);
            Assert.Equal(fixture.Kafka.Partitions, found.Partitions.Count);
        }
        Assert.Equal(fixture.Kafka.EmbeddedBrokers, metadata.Brokers.Count);
    }

    [Fact]
    public async Task Kcat_ReadsWhatConfluentKafkaProduced()
    {
        var topic = await fixture.CreateTopicAsync("kcat", partitions: 1);
        using (var producer = new ProducerBuilder<string, string>(Kafka.ProducerConfig("test")).Build())
        {
            for (var i = 0; i < 5; i++)
                await producer.ProduceAsync(topic, new Message<string, string> { Key = "k", Value = $"v{i}", Headers = new() { { HeaderNames.Transport, "http"u8.ToArray() } } });
        }
        var start = new ProcessStartInfo("kcat") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { "-b", fixture.KafkaBootstrapServers, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k=%s %h\\n" })
            start.ArgumentList.Add(argument);
        using var kcat = Process.Start(start)!;
        var output = await kcat.StandardOutput.ReadToEndAsync();
        await kcat.WaitForExitAsync();
        Assert.Equal(0, kcat.ExitCode);
        Assert.Equal(Enumerable.Range(0, 5).Select(i => $"k=v{i} transport=http"), output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    private List<Message<string, string>> Consume(string topic, string group, int expected)
    {
        var config = Kafka.ConsumerConfig(group, "test");
        config.EnablePartitionEof = true;
        using var consumer = new ConsumerBuilder<string, string>(config).Build();
        consumer.Subscribe(topic);
        var messages = new List<Message<string, string>>();
        var finished = new HashSet<int>();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            var result = consumer.Consume(TimeSpan.FromMilliseconds(200));
            if (result is null) continue;
            if (result.IsPartitionEOF)
            {
                finished.Add(result.Partition.Value);
                if (finished.Count == consumer.Assignment.Count && consumer.Assignment.Count > 0 && messages.Count >= expected) break;
                continue;
            }
            messages.Add(result.Message);
            consumer.StoreOffset(result);
        }
        if (messages.Count > 0) consumer.Commit();
        consumer.Close();
        return messages;
    }
}
