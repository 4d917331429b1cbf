using Pipeline.Cli.Hosting;

namespace Pipeline.Tests.Integration.Cli;

/// <summary>How a single stage's process ends when one of its loops fails: as a failure its supervisor sees.</summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class StageExitTests(StackFixture fixture)
{
    [Fact]
    public async Task StreamsStage_WhoseDeadLetterRelayFailsAtStart_ExitsNonZeroSayingWhy_Issue16()
    {
        // The host only gives the process its topics and schema: no processor of its own, so the process's relay leads.
        await using var host = await TestHost.StartAsync(fixture, Roles.Api, schema: "it_stage_exit");
        // A producer setting librdkafka refuses: only the relay builds a producer in this process, once it leads.
        using var processor = DepinProcess.Start(host, environment: new Dictionary<string, string> { ["PIPELINE_Kafka__Producer__acks"] = "not-a-number" });

        var exitCode = processor.WaitForExit(TimeSpan.FromSeconds(90));
        Assert.True(exitCode is not null, "depin streams is still running:\n" + processor.Output);
        Assert.NotEqual(0, exitCode);
        Assert.Contains("Stopped because DeadLetterRelay failed:", processor.Output, StringComparison.Ordinal);
        Assert.Contains("acks", processor.Output, StringComparison.Ordinal);
    }
}
