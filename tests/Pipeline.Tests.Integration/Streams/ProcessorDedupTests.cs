using System.Globalization;
using System.Text;
using Confluent.Kafka;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Kafka;
using Pipeline.Infra.Kafka;

namespace Pipeline.Tests.Integration.Streams;

/// <summary>
/// Issue 16: the processors keep no table of processed reading ids any more; mt_events' unique index on the event id
/// (derived from the reading id) is the duplicate check. Copies that reach the topic past the edge are still dropped.
/// </summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class ProcessorDedupTests(StackFixture fixture)
{
    [Fact]
    public async Task CopiesOfReadings_OnTheirPartitionAndOnOthers_AreStoredOnce_AndARejectedReadingIsDeadLetteredOnce_Issue16()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Api | Roles.Streams, schema: "it_processor_dedup");
        var device = new TestDevice("dedup");
        await Registration.RegisterAsync(host, device.Key);
        var first = device.Next();
        var future = device.Next(at: DateTimeOffset.UtcNow.AddDays(1));
        var second = device.Next();

        // A copy of the first reading follows it on its partition.
        Produce(host, device.Address, 0, [first.Envelope, future.Envelope, second.Envelope, first.Envelope]);
        await PipelineProbe.WaitForProcessorsAsync(host, host.RawTopic, timeout: TimeSpan.FromSeconds(60));
        // Then every one of them again, on other partitions (a replay, another producer), with one new reading.
        var third = device.Next();
        Produce(host, device.Address, 1, [first.Envelope, future.Envelope, third.Envelope]);
        Produce(host, device.Address, 2, [second.Envelope, future.Envelope, first.Envelope]);
        await PipelineProbe.WaitForProcessorsAsync(host, host.RawTopic, timeout: TimeSpan.FromSeconds(60));
        // The rejected reading again, alone in its batch: no accepted seq to collide with, only its event's id.
        Produce(host, device.Address, 1, [future.Envelope]);
        await PipelineProbe.WaitForProcessorsAsync(host, host.RawTopic, timeout: TimeSpan.FromSeconds(60));

        Assert.Equal(new[] { first.Id, second.Id, third.Id }.Order(), (await PipelineProbe.AcceptedAsync(host)).Select(a => a.ReadingId).Order());
        Assert.Equal([(device.Address, future.Id, "future")], (await PipelineProbe.RejectedAsync(host)).Select(r => (r.Device, r.Event.ReadingId, r.Event.Reason)));
        Assert.Equal([(future.Id, "future")], PipelineProbe.DeadLetters(host).Select(d => (d.ReadingId, d.Reason)));
    }

    internal static void Produce(TestHost host, string key, int partition, IEnumerable<byte[]> values)
    {
        using var producer = new ProducerBuilder<string, byte[]>(new KafkaOptions { BootstrapServers = host.KafkaBootstrapServers }.ProducerConfig("test-dedup")).Build();
        var receivedAt = Encoding.ASCII.GetBytes(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture));
        foreach (var value in values)
            producer.Produce(new TopicPartition(host.RawTopic, partition), new Message<string, byte[]> { Key = key, Value = value, Headers = new Headers { { HeaderNames.ReceivedAt, receivedAt } } });
        Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(30)));
    }
}
