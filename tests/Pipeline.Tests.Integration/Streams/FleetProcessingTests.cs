using Pipeline.Cli.Hosting;
using Pipeline.Simulator;

namespace Pipeline.Tests.Integration.Streams;

/// <summary>
/// A simulated fleet with every misbehaviour on, through the edge and the processors: exactly one event per valid
/// unique reading, and one dead letter with the right reason per invalid one.
/// </summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class FleetProcessingTests(StackFixture fixture)
{
    private static readonly string[] SignedRejections = ["seq_conflict", "out_of_range", "stale", "future", "teleport"];
    private static readonly string[] UnsignedRejections = ["bad_signature", "signer_mismatch", "unknown_device"];

    [Fact]
    public async Task MisbehavingFleet_EndsWithOneEventPerValidReading_AndOneDeadLetterPerInvalidOne()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.All, schema: "it_fleet_processing");
        var run = await new Simulation(host.Fleet(new SimulatorOptions
        {
            Vehicles = 15,
            Stations = 8,
            Duration = TimeSpan.FromSeconds(10),
            Rate = 60,
            Transport = TransportMode.Both,
            Misbehave = Misbehaviour.All,
            MisbehaveRate = 0.25,
            Seed = 7,
        }), TimeProvider.System).RunAsync(CancellationToken.None);
        await PipelineProbe.WaitForProcessorsAsync(host, host.RawTopic);

        var ledger = run.Ledger.Entries;
        Assert.Empty(run.Stats.Failures);
        Assert.All(ledger, e => Assert.NotEqual("", e.Edge));
        foreach (var kind in new[] { "dup", "old", "seq", "sig", "unregistered", "range", "skew", "teleport", "malformed" })
            Assert.Contains(ledger, e => e.Misbehaviour == kind);

        // One ReadingAccepted per valid unique reading, none twice.
        var accepted = await PipelineProbe.AcceptedAsync(host);
        var expectedAccepted = ledger.Where(e => e.Expected == "accepted").Select(e => e.ReadingId!).ToHashSet();
        Assert.Equal(accepted.Count, accepted.Select(a => a.ReadingId).Distinct().Count());
        Assert.Equal(expectedAccepted.Order(), accepted.Select(a => a.ReadingId).Order());

        // Readings the device really signed that failed a check: a ReadingRejected with the reason, on the device's stream.
        var rejected = await PipelineProbe.RejectedAsync(host);
        var expectedSigned = ledger.Where(e => SignedRejections.Contains(e.Expected)).ToList();
        Assert.Equal(expectedSigned.Select(e => (e.ReadingId!, e.Expected, e.Device)).Order(), rejected.Select(r => (r.Event.ReadingId, r.Event.Reason, r.Device)).Order());

        // Every invalid reading that reached the processors: exactly one dead letter with its reason.
        var dead = PipelineProbe.DeadLetters(host).Where(d => d.Source.StartsWith(host.RawTopic, StringComparison.Ordinal)).ToList();
        var expectedDead = ledger.Where(e => SignedRejections.Contains(e.Expected) || UnsignedRejections.Contains(e.Expected)).ToList();
        Assert.Equal(expectedDead.Select(e => (e.ReadingId!, e.Expected)).Order(), dead.Select(d => (d.ReadingId!, d.Reason)).Order());
        Assert.Equal(dead.Count, dead.Select(d => d.Source).Distinct().Count());
        Assert.All(dead, d => Assert.False(string.IsNullOrWhiteSpace(d.Detail)));

        // Forged and unregistered readings never touch a device's stream.
        var unsignedIds = ledger.Where(e => UnsignedRejections.Contains(e.Expected)).Select(e => e.ReadingId).ToHashSet();
        Assert.DoesNotContain(rejected, r => unsignedIds.Contains(r.Event.ReadingId));

        // Malformed JSON never reached the processors: the edge refused it (HTTP) or dead-lettered it itself (MQTT).
        Assert.All(ledger.Where(e => e.Expected == "malformed"), e => Assert.Equal("refused:malformed", e.Edge));
        Assert.Equal(ledger.Count(e => e.Expected == "malformed" && e.Transport == "mqtt"),
            PipelineProbe.DeadLetters(host).Count(d => d.Source.StartsWith("mqtt:", StringComparison.Ordinal) && d.Reason == "malformed"));
    }
}
