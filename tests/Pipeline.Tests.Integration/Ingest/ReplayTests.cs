using System.Net;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Envelope;

namespace Pipeline.Tests.Integration.Ingest;

/// <summary>Signed readings travel in plain text: whoever holds one can send it again. That must cost only the sender.</summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class ReplayTests(StackFixture fixture)
{
    [Fact]
    public async Task OneSignedReadingReplayed1000Times_IsAnsweredDuplicate_AndTheDeviceKeepsItsFullRate_Issue10()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Ingest, new Dictionary<string, string?>
        {
            ["Ingest:VerifySignatures"] = "true",
            ["Ingest:DeviceBurst"] = "20",
            ["Ingest:DeviceReadingsPerSecond"] = "1",
        });
        var device = new TestDevice("replayed");
        var original = device.Next();
        Assert.Equal("accepted", Assert.Single(await HttpIngestTests.PostAsync(host, original.Envelope, "application/json")).Status);

        // Someone else replays it: 500 times in one batch and 500 times alone.
        using var attacker = HttpIngestTests.ClientFrom(host, IPAddress.Parse("127.0.0.2"));
        var batch = await HttpIngestTests.PostAsync(attacker, HttpIngestTests.JsonArray(Enumerable.Repeat(original.Envelope, 500)), "application/json");
        var alone = new List<HttpIngestTests.ReceiptBody>();
        for (var i = 0; i < 500; i++) alone.AddRange(await HttpIngestTests.PostAsync(attacker, original.Envelope, "application/json"));
        Assert.All(batch.Concat(alone), r => Assert.Equal(("duplicate", original.Id), (r.Status, r.Id)));

        // The device's own next readings pass at its full burst (less the one reading it sent itself).
        var fresh = Enumerable.Range(0, 19).Select(_ => device.Next()).ToList();
        var receipts = await HttpIngestTests.PostAsync(host, HttpIngestTests.JsonArray(fresh.Select(r => r.Envelope)), "application/json");
        Assert.All(receipts, r => Assert.Equal("accepted", r.Status));

        // The replays were never produced: the reading is in the topic once.
        var ids = host.ReadAll(host.RawTopic).Select(m => EnvelopeParser.Parse(m.Message.Value, EnvelopeLimits.Default).Reading!.Id).ToList();
        Assert.Equal(fresh.Select(r => r.Id).Append(original.Id).Order(), ids.Order());
        var scrape = await PrometheusScrape.FromAsync(host.Ingest);
        Assert.Equal(1_000, scrape.Value("pipeline_ingest_readings_duplicate_total", "transport=\"http\""));
    }

    [Fact]
    public async Task SameReadingTwiceInOneRequest_IsProducedOnce_TheSecondCopyAnsweredDuplicate()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Ingest);
        var device = new TestDevice("twice");
        var (first, second) = (device.Next(), device.Next());
        var receipts = await HttpIngestTests.PostAsync(host, HttpIngestTests.JsonArray([first.Envelope, second.Envelope, first.Envelope]), "application/json");
        Assert.Equal([("accepted", first.Id), ("accepted", second.Id), ("duplicate", first.Id)], receipts.Select(r => (r.Status, r.Id!)));
        Assert.Equal(2, host.ReadAll(host.RawTopic).Count);
    }
}
