using Npgsql;
using Pipeline.Cli.Hosting;
using Pipeline.Simulator;

namespace Pipeline.Tests.Integration.Streams;

/// <summary>
/// Processors killed with SIGKILL at random points while a fleet streams, and a group of three losing one member:
/// afterwards the events are what one clean run produces — the ledger's verdicts — none lost, none twice; and each
/// dead letter exists once.
/// </summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class ProcessorFailureTests(StackFixture fixture)
{
    [Fact]
    public async Task ProcessorKilledRepeatedly_WhileTheFleetStreams_EndsWithExactlyTheEventsOfACleanRun()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Api | Roles.Ingest, schema: "it_processor_crash");
        var random = new Random(20261123);
        var simulation = StartFleet(host, seed: 11, seconds: 20);
        var processor = DepinProcess.Start(host);
        var kills = 0;
        try
        {
            while (!simulation.IsCompleted)
            {
                await Task.WhenAny(simulation, Task.Delay(TimeSpan.FromMilliseconds(random.Next(1_500, 4_000))));
                processor.Kill();
                kills++;
                processor.Dispose();
                processor = DepinProcess.Start(host);
            }
            var run = await simulation;
            await WaitAsync(host, processor);
            Assert.True(kills >= 4, $"only {kills} kills");
            await AssertExactlyTheLedgerAsync(host, run);
        }
        finally
        {
            processor.Dispose();
        }
    }

    [Fact]
    public async Task ThreeProcessorsInOneGroup_OneKilledMidStream_EndWithExactlyTheEventsOfACleanRun()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Api | Roles.Ingest, schema: "it_processor_scale");
        var processors = Enumerable.Range(0, 3).Select(_ => DepinProcess.Start(host)).ToList();
        try
        {
            // Every member holds partitions before the fleet sends: under load a process slow to start would otherwise
            // join after the others had consumed the whole stream, and take no part.
            await WaitUntilAsync(() => Task.FromResult(processors.All(HoldsPartitions)), "every processor assigned partitions", processors);
            var simulation = StartFleet(host, seed: 12, seconds: 20);
            // Mid-stream: the group has stored part of the stream and the fleet is still sending.
            await WaitUntilAsync(async () => await StoredOffsetsAsync(host) > 0, "the group storing readings", processors);
            Assert.False(simulation.IsCompleted, "The fleet finished before a member could be killed mid-stream.");
            processors[1].Kill();
            var run = await simulation;
            await WaitAsync(host, processors[0], processors[2]);
            Assert.True(processors[0].Running && processors[2].Running);
            await AssertExactlyTheLedgerAsync(host, run);
        }
        finally
        {
            foreach (var processor in processors) processor.Dispose();
        }
    }

    [Fact]
    public async Task DeadLetterRelayLosingItsSession_StopsRelaying_AndEachDeadLetterIsWrittenOnce()
    {
        // Two relays for one store: this host's and another process's. The leader's database session is cut while
        // dead letters flow; the lock goes with it, and the relay that held it must not keep sending beside the next.
        await using var host = await TestHost.StartAsync(fixture, Roles.Api | Roles.Ingest | Roles.Streams, schema: "it_relay_session");
        var leader = await RelayLockHolderAsync(host);
        var other = DepinProcess.Start(host);
        try
        {
            var simulation = StartFleet(host, seed: 13, seconds: 20);
            await WaitForDeadLettersAsync(host);
            await host.ExecuteAsync($"SELECT pg_terminate_backend({leader})");
            var run = await simulation;
            await WaitAsync(host, other);
            await AssertExactlyTheLedgerAsync(host, run);
        }
        finally
        {
            other.Dispose();
        }
    }

    /// <summary>The server process of the session holding the dead-letter relay's advisory lock, once a relay holds it.</summary>
    private static async Task<int> RelayLockHolderAsync(TestHost host)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            await using var connection = new NpgsqlConnection(host.PostgresConnectionString);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("""
                SELECT l.pid FROM pg_locks l, (SELECT hashtextextended('depin:dead-letter-relay:' || $1, 0) AS key) k
                WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                  AND l.classid::bigint = (k.key >> 32) & 4294967295 AND l.objid::bigint = k.key & 4294967295
                """, connection) { Parameters = { new() { Value = host.Schema } } };
            if (await command.ExecuteScalarAsync() is int pid) return pid;
            if (DateTime.UtcNow > deadline) throw new TimeoutException("No dead-letter relay took the lock.");
            await Task.Delay(100);
        }
    }

    /// <summary>Waits until the host's relay has written dead letters: the session is cut in the middle of the flow.</summary>
    private static async Task WaitForDeadLettersAsync(TestHost host)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var scrape = await PrometheusScrape.FromAsync(host.Api);
            if (scrape.Has("pipeline_streams_dead_letters_written_total") && scrape.Value("pipeline_streams_dead_letters_written_total") > 0) return;
            if (DateTime.UtcNow > deadline) throw new TimeoutException("The relay wrote no dead letter.");
            await Task.Delay(100);
        }
    }

    private static bool HoldsPartitions(DepinProcess processor) =>
        System.Text.RegularExpressions.Regex.IsMatch(processor.Output, @"Assigned partitions \d");

    /// <summary>The raw-topic offsets the processors' group has stored with its events, summed over partitions.</summary>
    private static async Task<long> StoredOffsetsAsync(TestHost host)
    {
        await using var connection = new NpgsqlConnection(host.PostgresConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"SELECT to_regclass('{host.Schema}.consumer_offsets') IS NOT NULL", connection);
        if (!(bool)(await command.ExecuteScalarAsync())!) return 0;
        command.CommandText = $"SELECT coalesce(sum(next_offset), 0)::bigint FROM {host.Schema}.consumer_offsets WHERE group_id = 'depin-streams' AND topic = $1";
        command.Parameters.Add(new NpgsqlParameter { Value = host.RawTopic });
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what, IReadOnlyList<DepinProcess> processors)
    {
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"Waited 2 minutes for {what}.\nProcessor output:\n" + string.Join("\n---\n", processors.Select(p => string.Join('\n', p.Output.Split('\n').TakeLast(15)))));
            await Task.Delay(100);
        }
    }

    private static async Task WaitAsync(TestHost host, params DepinProcess[] processors)
    {
        try
        {
            await PipelineProbe.WaitForProcessorsAsync(host, host.RawTopic, timeout: TimeSpan.FromMinutes(2));
        }
        catch (TimeoutException e)
        {
            var tails = processors.Select(p => string.Join('\n', p.Output.Split('\n').TakeLast(15)));
            throw new TimeoutException(e.Message + "\nProcessor output:\n" + string.Join("\n---\n", tails), e);
        }
    }

    private static Task<SimulationResult> StartFleet(TestHost host, int seed, int seconds)
    {
        return new Simulation(host.Fleet(new SimulatorOptions
        {
            Vehicles = 20,
            Stations = 10,
            Duration = TimeSpan.FromSeconds(seconds),
            Rate = 80,
            Transport = TransportMode.Http,
            Misbehave = Misbehaviour.All & ~Misbehaviour.Malformed,
            MisbehaveRate = 0.1,
            Seed = seed,
        }), TimeProvider.System).RunAsync(CancellationToken.None);
    }

    private static async Task AssertExactlyTheLedgerAsync(TestHost host, SimulationResult run)
    {
        var ledger = run.Ledger.Entries;
        Assert.All(ledger, e => Assert.Contains(e.Edge, e.Expected == "duplicate" ? ["accepted", "duplicate"] : (string[])["accepted"]));
        var accepted = await PipelineProbe.AcceptedAsync(host);
        Assert.Equal(ledger.Where(e => e.Expected == "accepted").Select(e => e.ReadingId!).Order(), accepted.Select(a => a.ReadingId).Order());
        var rejected = await PipelineProbe.RejectedAsync(host);
        string[] signed = ["seq_conflict", "out_of_range", "stale", "future", "teleport"];
        Assert.Equal(ledger.Where(e => signed.Contains(e.Expected)).Select(e => (e.ReadingId!, e.Expected)).Order(), rejected.Select(r => (r.Event.ReadingId, r.Event.Reason)).Order());
        var dead = PipelineProbe.DeadLetters(host);
        Assert.Equal(dead.Count, dead.Select(d => d.Source).Distinct().Count());
        Assert.Equal(ledger.Where(e => e.Expected is not ("accepted" or "duplicate")).Select(e => (e.ReadingId!, e.Expected)).Order(), dead.Select(d => (d.ReadingId!, d.Reason)).Order());
    }
}
