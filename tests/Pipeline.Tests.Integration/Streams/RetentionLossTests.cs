using System.Text.Json;
using Pipeline.Cli.Hosting;

namespace Pipeline.Tests.Integration.Streams;

/// <summary>
/// Issue 16: while the processors are away the broker may delete readings they never read (retention; the embedded
/// broker's 5 MiB). That loss cannot be undone, but it must be seen: counted per partition, logged as an error — once,
/// not again at every restart — while every reading the broker kept is still recorded.
/// </summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class RetentionLossTests(StackFixture fixture)
{
    private const string LostMetric = "pipeline_streams_readings_lost_to_retention_total";

    [Fact]
    public async Task ProcessorsStopped_BrokerDeletesReadingsTheyNeverRead_TheSkippedAreCountedAndLoggedOnce_AndTheKeptAreStored_Issue16()
    {
        var broker = fixture.EmbeddedKafka ?? throw new InvalidOperationException("This test deletes records through the embedded broker's native API; unset PIPELINE_KAFKA.");
        await using var host = await TestHost.StartAsync(fixture, Roles.Api, schema: "it_retention_loss");
        var device = new TestDevice("retention");
        await Registration.RegisterAsync(host, device.Key);
        var readings = Enumerable.Range(0, 24).Select(_ => device.Next()).ToList();

        // A first run records 4 readings of partition 0 and 2 of partition 1: the store holds offsets 4 and 2.
        ProcessorDedupTests.Produce(host, device.Address, 0, readings[..4].Select(r => r.Envelope));
        ProcessorDedupTests.Produce(host, device.Address, 1, readings[4..6].Select(r => r.Envelope));
        var firstRun = await RunProcessorAsync(host);
        Assert.False(firstRun.Has(LostMetric), "A first start counted readings as lost.");

        // Away: 10 more reach partition 0 (offsets 4–13) and 3 partition 1; retention deletes partition 0 before offset 11.
        ProcessorDedupTests.Produce(host, device.Address, 0, readings[6..16].Select(r => r.Envelope));
        ProcessorDedupTests.Produce(host, device.Address, 1, readings[16..19].Select(r => r.Envelope));
        broker.DeleteRecords(host.RawTopic, 0, 11);

        // Back: offsets 4–10 of partition 0 (7 readings) are gone; the rest is recorded.
        var secondRun = await RunProcessorAsync(host, expectedLost: 7);
        Assert.Equal(7, secondRun.Value(LostMetric, "partition=\"0\"", $"topic=\"{host.RawTopic}\""));
        Assert.False(secondRun.Has(LostMetric, "partition=\"1\""), "Partition 1 lost nothing, yet was counted.");
        var error = Assert.Single(secondRun.Errors);
        Assert.Equal((host.RawTopic, 0, 4L, 11L, 7L), (error.GetProperty("Topic").GetString(), error.GetProperty("Partition").GetInt32(),
            error.GetProperty("Committed").GetInt64(), error.GetProperty("LowWatermark").GetInt64(), error.GetProperty("Count").GetInt64()));
        var stored = (await PipelineProbe.AcceptedAsync(host)).Select(a => a.ReadingId).ToList();
        Assert.Equal(readings[..6].Concat(readings[13..19]).Select(r => r.Id).Order(), stored.Order());

        // A normal restart, with more readings on both partitions: nothing more is counted.
        ProcessorDedupTests.Produce(host, device.Address, 0, readings[19..22].Select(r => r.Envelope));
        ProcessorDedupTests.Produce(host, device.Address, 1, readings[22..].Select(r => r.Envelope));
        var thirdRun = await RunProcessorAsync(host);
        Assert.False(thirdRun.Has(LostMetric), "A normal restart counted readings as lost.");
        Assert.Empty(thirdRun.Errors);
        Assert.Equal(24 - 7, (await PipelineProbe.AcceptedAsync(host)).Count);
    }

    private sealed record Run(PrometheusScrape Metrics, List<JsonElement> Errors)
    {
        public bool Has(string name, params string[] labels) => Metrics.Has(name, labels);
        public double Value(string name, params string[] labels) => Metrics.Value(name, labels);
    }

    /// <summary>`depin streams` until it has caught up with the topic: its metrics then, and the state of each error it logged.</summary>
    private static async Task<Run> RunProcessorAsync(TestHost host, double? expectedLost = null)
    {
        var port = TestHost.FreePort();
        using var processor = DepinProcess.Start(host, environment: new Dictionary<string, string> { ["PIPELINE_STATUS_PORT"] = $"{port}" });
        using var status = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        await PipelineProbe.WaitForProcessorsAsync(host, host.RawTopic, timeout: TimeSpan.FromSeconds(90));
        // The exporter serves a cached scrape for a moment: a count just made may show in the next one.
        if (expectedLost is { } lost) await PrometheusScrape.ValueOnceAsync(status, LostMetric, lost);
        var metrics = await PrometheusScrape.FromAsync(status);
        processor.Kill();
        var errors = new List<JsonElement>();
        foreach (var line in processor.Output.Split('\n'))
        {
            if (!line.StartsWith('{')) continue;
            var entry = JsonDocument.Parse(line).RootElement;
            if (entry.GetProperty("LogLevel").GetString() is "Error" or "Critical") errors.Add(entry.GetProperty("State").Clone());
        }
        return new Run(metrics, errors);
    }
}
