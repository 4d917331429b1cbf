using Pipeline.Cli.Hosting;
using Pipeline.Tests.Integration.Ingest;

namespace Pipeline.Tests.Integration.Streams;

/// <summary>
/// The database failing under the processors, as Marten reports it (wrapped in its own exception): the batch waits and
/// is retried, and the host keeps running; afterwards the readings end exactly as without the failure.
/// </summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class DatabaseOutageTests(StackFixture fixture)
{
    [Fact]
    public async Task TablesGoneWhileRecordingOrLookingUp_TheProcessorRetries_AndTheHostKeepsRunning()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Api | Roles.Ingest | Roles.Streams, schema: "it_processor_db_outage");
        var device = new TestDevice("db-outage");
        await Registration.RegisterAsync(host, device.Key);
        // One reading through first: the processors' tables and Marten's exist, and the directory knows the device.
        var warmUp = device.Next();
        await HttpIngestTests.PostAsync(host, warmUp.Envelope, "application/json");
        await PipelineProbe.WaitForProcessorsAsync(host, host.RawTopic);

        // Appending the events fails (Marten wraps the PostgreSQL error) until the table is back.
        var duringOutage = device.Next();
        await using (await AwayAsync(host, "mt_events"))
        {
            await HttpIngestTests.PostAsync(host, duringOutage.Envelope, "application/json");
            await WaitForRetryAsync(host, "record");
        }
        await PipelineProbe.WaitForProcessorsAsync(host, host.RawTopic);
        Assert.Equal([warmUp.Id, duringOutage.Id], (await PipelineProbe.AcceptedAsync(host)).Select(a => a.ReadingId));

        // Looking up a device the directory has not seen fails the same way, in the check stage.
        var stranger = new TestDevice("db-outage-stranger").Next();
        await using (await AwayAsync(host, "mt_doc_device"))
        {
            await HttpIngestTests.PostAsync(host, stranger.Envelope, "application/json");
            await WaitForRetryAsync(host, "lookup");
        }
        await PipelineProbe.WaitForProcessorsAsync(host, host.RawTopic);
        var dead = PipelineProbe.DeadLetters(host);
        Assert.Equal([(stranger.Id, "unknown_device")], dead.Select(d => (d.ReadingId, d.Reason)));

        Assert.False(host.App.Lifetime.ApplicationStopping.IsCancellationRequested, "A database failure stopped the host.");
    }

    /// <summary>Renames a table of the host's schema away; disposing the result brings it back.</summary>
    private static async Task<IAsyncDisposable> AwayAsync(TestHost host, string table)
    {
        var schema = host.Schema;
        await host.ExecuteAsync($"ALTER TABLE {schema}.{table} RENAME TO {table}_away");
        return new Restore(() => host.ExecuteAsync($"ALTER TABLE {schema}.{table}_away RENAME TO {table}"));
    }

    /// <summary>Waits until the processors counted a retry of this step on /metrics.</summary>
    private static async Task WaitForRetryAsync(TestHost host, string step)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var scrape = await PrometheusScrape.FromAsync(host.Api);
            if (scrape.Has("pipeline_streams_retries_total", $"step=\"{step}\"") && scrape.Value("pipeline_streams_retries_total", $"step=\"{step}\"") >= 1) return;
            Assert.False(host.App.Lifetime.ApplicationStopping.IsCancellationRequested, $"The host is stopping instead of retrying the {step} step.");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"The processors never retried the {step} step.");
            await Task.Delay(100);
        }
    }

    private sealed class Restore(Func<Task> restore) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync() => await restore();
    }
}
