using System.Net;
using System.Net.Http.Json;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Envelope;

namespace Pipeline.Tests.Integration.Ingest;

/// <summary>With every broker down, the edge says 503 and acknowledges nothing that does not later reach the topic.</summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class BrokerOutageTests(StackFixture fixture)
{
    [Fact]
    public async Task BrokersDown_RequestsGet503WithRetryAfter_AndEveryAcknowledgedReadingIsInTheTopicOnceTheyReturn()
    {
        var broker = fixture.EmbeddedKafka ?? throw new InvalidOperationException("This test takes brokers down through the embedded broker's mock API; unset PIPELINE_KAFKA.");
        await using var host = await TestHost.StartAsync(fixture, Roles.Ingest, new Dictionary<string, string?> { ["Ingest:AckTimeout"] = "00:00:02" });
        var device = new TestDevice("outage");
        var acknowledged = new List<string>();
        var notAcknowledged = new List<(string Id, byte[] Envelope)>();

        acknowledged.AddRange((await HttpIngestTests.PostAsync(host, HttpIngestTests.JsonArray(Enumerable.Range(0, 5).Select(_ => device.Next().Envelope)), "application/json")).Select(r => r.Id!));

        broker.SetBrokerDown();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var readings = Enumerable.Range(0, 4).Select(_ => device.Next()).ToList();
                var response = await host.Ingest.PostAsync("/v1/readings", new ByteArrayContent(HttpIngestTests.JsonArray(readings.Select(r => r.Envelope))) { Headers = { ContentType = new("application/json") } });
                Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
                Assert.NotNull(response.Headers.RetryAfter);
                var problem = await response.Content.ReadFromJsonAsync<ProblemBody>();
                Assert.Equal("unavailable", problem!.Reason);
                Assert.Equal(readings.Count, problem.Receipts.Count);
                Assert.All(problem.Receipts, r => Assert.Equal("unavailable", r.Status));
                notAcknowledged.AddRange(readings.Select(r => (r.Id, r.Envelope)));
            }
            var (mqttExit, _) = await MqttIngestTests.PublishAsync(host, device, device.Next().Envelope, "mqttv5");
            Assert.NotEqual(0, mqttExit);
        }
        finally
        {
            broker.SetBrokerUp();
        }

        // The client does as told: sends again what was not acknowledged.
        var resent = await HttpIngestTests.PostAsync(host, HttpIngestTests.JsonArray(notAcknowledged.Select(r => r.Envelope)), "application/json");
        Assert.All(resent, r => Assert.Equal("accepted", r.Status));
        acknowledged.AddRange(resent.Select(r => r.Id!));

        var inTopic = host.ReadAll(host.RawTopic).Select(m => EnvelopeParser.Parse(m.Message.Value, EnvelopeLimits.Default).Reading!.Id).ToList();
        Assert.Empty(acknowledged.Except(inTopic));
        // Readings acknowledged before the outage are there exactly once; ones sent during it at most twice (original and resend).
        Assert.All(acknowledged.Take(5), id => Assert.Single(inTopic, id));
        Assert.All(inTopic.GroupBy(id => id), g => Assert.InRange(g.Count(), 1, 2));
    }

    private sealed record ProblemBody(string Reason, List<HttpIngestTests.ReceiptBody> Receipts);
}
