using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Confluent.Kafka;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Kafka;
using Pipeline.Infra.Kafka;
using Pipeline.Streams.Processing;
using Pipeline.Tests.Integration.Ingest;

namespace Pipeline.Tests.Integration.Streams;

/// <summary>
/// Issue 10, item 1: one signed reading PostgreSQL cannot store used to stop every processor for good (the batch was
/// retried as if the database were down). Now the parser refuses such strings wherever a reading enters, and whatever
/// the store still refuses costs only the message that carries it.
/// </summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class PoisonMessageTests(StackFixture fixture)
{
    [Fact]
    public async Task PoisonReadingOfARegisteredDevice_IsRefusedAtTheEdgeAndByTheProcessors_AndTheNextReadingIsStored_Issue10()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Api | Roles.Ingest | Roles.Streams, schema: "it_poison_reading");
        var device = new TestDevice("poison");
        await Registration.RegisterAsync(host, device.Key);
        (string Id, byte[] Envelope, string Payload)[] poison = [device.Next([new("\0", 1)]), device.Next(obd: ["\0"])];
        Assert.Contains("\"\\u0000\"", poison[0].Payload);

        // The edge answers with a problem and its reason: nothing reaches the topic.
        foreach (var reading in poison)
        {
            var response = await host.Ingest.PostAsync("/v1/readings", new ByteArrayContent(reading.Envelope) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } });
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
            Assert.Equal("bad_encoding", problem.GetProperty("reason").GetString());
            Assert.Contains("U+0000", problem.GetProperty("detail").GetString());
        }

        // Should such a reading reach the topic all the same (an older edge, another producer), the processors refuse it too.
        Produce(host, device.Address, poison.Select(p => p.Envelope));
        var honest = device.Next();
        await HttpIngestTests.PostAsync(host, honest.Envelope, "application/json");

        await PipelineProbe.WaitForProcessorsAsync(host, host.RawTopic, timeout: TimeSpan.FromSeconds(60));
        Assert.Equal([honest.Id], (await PipelineProbe.AcceptedAsync(host)).Select(a => a.ReadingId));
        // Unreadable, so no reading id: the dead letters carry the bytes as they were sent.
        var dead = PipelineProbe.DeadLetters(host);
        Assert.Equal(poison.Select(p => Convert.ToHexString(p.Envelope)).Order(), dead.Select(d => Convert.ToHexString(d.Value)).Order());
        Assert.All(dead, d => Assert.Equal("bad_encoding", d.Reason));
    }

    [Fact]
    public async Task StoreRefusingMessagesOfABatch_DeadLettersEachOnce_AndRecordsTheRestOfTheBatch_Issue10()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Api | Roles.Ingest, schema: "it_poison_store");
        var device = new TestDevice("store-refuses");
        await Registration.RegisterAsync(host, device.Key);
        var readings = Enumerable.Range(0, 24).Select(_ => device.Next()).ToList();

        // Genuine refusals by PostgreSQL of what two readings carry: one from the accepted seqs' insert, one from the events' append into Marten's mt_events.
        var store = host.Create<ProcessingStore>();
        await store.EnsureSchemaAsync(CancellationToken.None);
        await host.ExecuteAsync($"ALTER TABLE {store.Schema}.accepted_seqs ADD CONSTRAINT no_seq_7 CHECK (seq <> 7)");
        await host.ExecuteAsync($"ALTER TABLE {store.Schema}.mt_events ADD CONSTRAINT no_seq_19 CHECK (type <> 'reading_accepted.v1' OR (data ->> 'seq')::bigint <> 19)");

        // All in one partition before a processor starts: they arrive together and are decided as one batch.
        await HttpIngestTests.PostAsync(host, HttpIngestTests.Ndjson(readings.Select(r => r.Envelope)), "application/x-ndjson");
        using var processor = DepinProcess.Start(host);
        try
        {
            await PipelineProbe.WaitForProcessorsAsync(host, host.RawTopic, timeout: TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException(e.Message + "\n" + string.Join('\n', processor.Output.Split('\n').TakeLast(20)), e);
        }

        string[] refused = [readings[6].Id, readings[18].Id];
        Assert.Equal(readings.Select(r => r.Id).Except(refused).Order(), (await PipelineProbe.AcceptedAsync(host)).Select(a => a.ReadingId).Order());
        var dead = PipelineProbe.DeadLetters(host);
        Assert.Equal(refused.Order(), dead.Select(d => d.ReadingId!).Order());
        Assert.All(dead, d => Assert.Equal("unstorable", d.Reason));
        Assert.Contains(dead, d => d.Detail.Contains("SQLSTATE 23514", StringComparison.Ordinal) && d.Detail.Contains("no_seq_7", StringComparison.Ordinal));
        Assert.Contains(dead, d => d.Detail.Contains("SQLSTATE 23514", StringComparison.Ordinal) && d.Detail.Contains("no_seq_19", StringComparison.Ordinal));
        // The two were found by halving the batch they came in, not decided one message at a time.
        Assert.Contains("halving it to find the message", processor.Output);
        Assert.True(processor.Running, "The processor stopped.");
    }

    private static void Produce(TestHost host, string key, IEnumerable<byte[]> values)
    {
        using var producer = new ProducerBuilder<string, byte[]>(new KafkaOptions { BootstrapServers = host.KafkaBootstrapServers }.ProducerConfig("test-poison")).Build();
        var receivedAt = Encoding.ASCII.GetBytes(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture));
        foreach (var value in values)
            producer.Produce(host.RawTopic, new Message<string, byte[]> { Key = key, Value = value, Headers = new Headers { { HeaderNames.ReceivedAt, receivedAt } } });
        Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(30)));
    }

}
