using System.Net.Http.Json;
using Pipeline.Cli.Hosting;
using Pipeline.Tests.Integration.Ingest;
using V = Pipeline.Core.Signals.SignalCatalog.Vehicle;

namespace Pipeline.Tests.Integration.Streams;

/// <summary>The embedded broker keeps about 5 MiB per partition: the edge must stop acknowledging before that evicts anything unprocessed.</summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class BacklogTests(StackFixture fixture)
{
    private const long RetentionPerPartition = 5L * 1024 * 1024;

    [Fact]
    public async Task ProcessorsStopped_FleetSendsMoreThanTheBrokerKeeps_EveryAcknowledgedReadingReachesTheStore_Issue10()
    {
        if (fixture.EmbeddedKafka is null) throw new InvalidOperationException("This test relies on the embedded broker's 5 MiB per partition; unset PIPELINE_KAFKA.");
        await using var host = await TestHost.StartAsync(fixture, Roles.Api | Roles.Ingest, new Dictionary<string, string?>
        {
            // Not a test of rates: every device may send as fast as it likes.
            ["Ingest:DeviceReadingsPerSecond"] = "1000000",
            ["Ingest:DeviceBurst"] = "1000000",
            // Uncompressed, the broker holds what the edge counts nearly byte for byte: the tightest case for its estimate.
            ["Kafka:Producer:compression.type"] = "none",
        }, schema: "it_backlog");
        var fleet = Enumerable.Range(0, 30).Select(i => new TestDevice($"backlog-{i}")).ToList();
        foreach (var device in fleet) await Registration.RegisterAsync(host, device.Key);
        var acknowledged = new List<string>();
        var sent = 0;

        // The processors run, catch up and stop: their group has offsets on the broker, and then nobody consumes.
        var processor = DepinProcess.Start(host);
        try
        {
            acknowledged.AddRange(await SendAsync(host, fleet.Select(d => d.Next(Signals(d))).ToList(), []));
            sent += fleet.Count;
            await PipelineProbe.WaitForProcessorsAsync(host, host.RawTopic);
        }
        finally
        {
            processor.Dispose();
        }

        // The fleet sends one and a half times what the broker keeps in its three partitions together.
        var refused = new List<(string Id, byte[] Envelope)>();
        long attempted = 0;
        while (attempted < 1.5 * RetentionPerPartition * 3)
        {
            var batch = fleet.SelectMany(d => Enumerable.Range(0, 5).Select(_ => d.Next(Signals(d)))).ToList();
            attempted += batch.Sum(r => r.Envelope.Length);
            sent += batch.Count;
            acknowledged.AddRange(await SendAsync(host, batch, refused));
        }
        var edgeRefused = refused.Count;

        // The processors come back; the fleet resends what was refused until all of it is acknowledged.
        processor = DepinProcess.Start(host);
        try
        {
            while (refused.Count > 0)
            {
                var again = refused.ToList();
                refused.Clear();
                foreach (var chunk in again.Chunk(500)) acknowledged.AddRange(await SendAsync(host, [.. chunk.Select(r => (r.Id, r.Envelope, ""))], refused));
                if (refused.Count > 0) await Task.Delay(TimeSpan.FromSeconds(1));
            }
            await PipelineProbe.WaitForProcessorsAsync(host, host.RawTopic, timeout: TimeSpan.FromMinutes(3));
        }
        finally
        {
            processor.Dispose();
        }

        // The broker did evict (it keeps 5 MiB whatever was processed), but only what the processors already had.
        var stored = (await PipelineProbe.AcceptedAsync(host)).Select(a => a.ReadingId).ToHashSet();
        Assert.Equal(sent, acknowledged.Distinct().Count());
        Assert.DoesNotContain(acknowledged, id => !stored.Contains(id));
        // It held out by refusing, not because the processors happened to keep up.
        Assert.True(edgeRefused > 0, "The edge refused nothing while the processors were stopped.");
    }

    /// <summary>Posts readings; returns the ids acknowledged and adds those refused as unavailable (to send again) to <paramref name="refused"/>.</summary>
    private static async Task<List<string>> SendAsync(TestHost host, List<(string Id, byte[] Envelope, string Payload)> readings, List<(string Id, byte[] Envelope)> refused)
    {
        var content = new ByteArrayContent(HttpIngestTests.Ndjson(readings.Select(r => r.Envelope))) { Headers = { ContentType = new("application/x-ndjson") } };
        var response = await host.Ingest.PostAsync("/v1/readings", content);
        var body = await response.Content.ReadFromJsonAsync<ReceiptsBody>();
        Assert.True(body?.Receipts?.Count == readings.Count, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        var accepted = new List<string>();
        foreach (var receipt in body.Receipts)
        {
            if (receipt.Status is "accepted" or "duplicate") accepted.Add(receipt.Id!);
            else if (receipt.Reason == "unavailable") refused.Add((readings[receipt.Index].Id, readings[receipt.Index].Envelope));
            else Assert.Fail($"reading {receipt.Index}: {receipt.Status} {receipt.Reason}");
        }
        return accepted;
    }

    /// <summary>A vehicle's reading of about 800 bytes, every value in range.</summary>
    private static KeyValuePair<string, double>[] Signals(TestDevice device) =>
    [
        new(V.Speed, 40 + device.Seq % 30), new(V.EngineSpeed, 2_000 + device.Seq % 500), new(V.CoolantTemperature, 90),
        new(V.OilTemperature, 95), new(V.EngineLoad, 35), new(V.ThrottlePosition, 20), new(V.IntakePressure, 100),
        new(V.IntakeTemperature, 25), new(V.AirFlow, 12.5), new(V.RunTime, 600 + device.Seq), new(V.FuelLevel, 55),
        new(V.Odometer, 12_345 + device.Seq / 10.0), new(V.AmbientTemperature, 14), new(V.DistanceSinceCodesCleared, 321),
    ];

    private sealed record ReceiptsBody(List<HttpIngestTests.ReceiptBody>? Receipts);
}
