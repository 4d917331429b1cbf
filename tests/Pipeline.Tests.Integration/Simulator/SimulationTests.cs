using Pipeline.Cli.Hosting;
using Pipeline.Simulator;
using Pipeline.Core.Envelope;

namespace Pipeline.Tests.Integration.Simulator;

/// <summary>The simulator against the real edge and registry: every device registers, readings arrive, and a restart continues.</summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class SimulationTests(StackFixture fixture)
{
    [Fact]
    public async Task Fleet_OverHttpAndMqtt_RegistersSendsAndIsAcknowledged_ThenARestartContinuesItsSequences()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Api | Roles.Ingest, schema: "it_simulation");
        var options = host.Fleet(new SimulatorOptions
        {
            Vehicles = 12,
            Stations = 6,
            Duration = TimeSpan.FromSeconds(6),
            Rate = 40,
            Transport = TransportMode.Both,
            Misbehave = Misbehaviour.All,
            MisbehaveRate = 0.2,
            Seed = 42,
        });

        var first = await new Simulation(options, TimeProvider.System).RunAsync(CancellationToken.None);
        Assert.Equal(18, first.Stats.Registered);
        Assert.True(first.Stats.Failures.IsEmpty, string.Join("\n", first.Stats.Failures.Keys.Concat(first.Stats.Recovered.Keys)));
        var entries = first.Ledger.Entries;
        Assert.True(entries.Count > 100, $"only {entries.Count} readings in 6 s at 40/s");
        Assert.Contains(entries, e => e.Transport == "http");
        Assert.Contains(entries, e => e.Transport == "mqtt");
        Assert.All(entries, e => Assert.NotEqual("", e.Edge));
        // The edge checks shape only: everything but the malformed ones is acknowledged (a copy of a reading the broker
        // already has, as duplicate), the malformed ones refused.
        Assert.All(entries.Where(e => e.Expected != "malformed"), e => Assert.Contains(e.Edge, e.Expected == "duplicate" ? ["accepted", "duplicate"] : (string[])["accepted"]));
        Assert.All(entries.Where(e => e.Expected == "malformed"), e => Assert.Equal("refused:malformed", e.Edge));
        Assert.True(entries.Count(e => e.Misbehaviour is not null) > 10);

        // Every acknowledged reading is in the topic, and nothing else (a request resent after a broken connection may add a copy).
        var inTopic = host.ReadAll(host.RawTopic).Select(m => EnvelopeParser.Parse(m.Message.Value, EnvelopeLimits.Default).Reading!.Id).ToList();
        Assert.Equal(entries.Where(e => e.Edge == "accepted").Select(e => e.ReadingId!).Distinct().Order(), inTopic.Distinct().Order());

        var lastSeq = first.Fleet.Devices.ToDictionary(d => d.Name, d => (d.Address, d.Seq));
        var second = await new Simulation(options with { Duration = TimeSpan.FromSeconds(3), Misbehave = Misbehaviour.None }, TimeProvider.System).RunAsync(CancellationToken.None);
        var continued = 0;
        foreach (var device in second.Fleet.Devices)
        {
            Assert.Equal(lastSeq[device.Name].Address, device.Address);
            var sent = second.Ledger.Entries.Where(e => e.Device == device.Address).Select(e => e.Seq).ToList();
            if (sent.Count == 0) continue;
            Assert.Equal(lastSeq[device.Name].Seq + 1, sent.Min());
            continued++;
        }
        Assert.True(continued >= 5, $"only {continued} devices sent in the second run");

        // A fleet that keeps no ledger (depin up's, which drives until the host stops) still sends, and holds nothing of it.
        var unkept = await new Simulation(options with { Duration = TimeSpan.FromSeconds(2), Misbehave = Misbehaviour.None, KeepLedger = false }, TimeProvider.System).RunAsync(CancellationToken.None);
        Assert.True(unkept.Stats.Acknowledged > 20, $"only {unkept.Stats.Acknowledged} readings acknowledged in 2 s at 40/s");
        Assert.Empty(unkept.Ledger.Entries);
    }
}
