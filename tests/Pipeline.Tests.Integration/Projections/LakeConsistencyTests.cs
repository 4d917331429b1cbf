using Pipeline.Cli.Hosting;
using Pipeline.Simulator;
using Pipeline.Projections.Lake;

namespace Pipeline.Tests.Integration.Projections;

/// <summary>
/// The projector as a separate process, SIGKILLed at random points (compaction included) while a fleet streams: every
/// file the manifest names is on disk even straight after a kill, and the lake it ends with has exactly the rows of an
/// uninterrupted projection — a rebuild from the event store — partition by partition, with no row missing or twice.
/// A committed file lost all the same (a rename undone by power failure) comes back from its events on recovery.
/// </summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class LakeConsistencyTests(StackFixture fixture)
{
    /// <summary>Until no partition holds three or more small files: compaction has merged what the many short-lived projectors wrote.</summary>
    private static async Task WaitForCompactionAsync(TestHost host)
    {
        var manifest = host.Lake.Manifest(LakeProjector.LiveLake);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await manifest.FilesAsync(CancellationToken.None)).GroupBy(f => (f.Dataset, f.Date)).Any(g => g.Count() >= 3))
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("Compaction did not merge the small files.");
            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task ProjectorKilledRepeatedly_EndsWithTheLakeARebuildProduces()
    {
        var lakeDirectory = Directory.CreateTempSubdirectory("depin-lake-").FullName;
        await using var host = await TestHost.StartAsync(fixture, Roles.Api | Roles.Ingest | Roles.Streams, schema: "it_lake_consistency");
        var environment = new Dictionary<string, string>
        {
            ["PIPELINE_Lake__Directory"] = lakeDirectory,
            ["PIPELINE_Lake__CompactAtFiles"] = "3",
            ["PIPELINE_Lake__CompactionInterval"] = "00:00:02",
            ["PIPELINE_Lake__MaxEventsPerRound"] = "300",
        };
        var random = new Random(6);
        var simulation = new Simulation(host.Fleet(new SimulatorOptions
        {
            Vehicles = 15, Stations = 8, Duration = TimeSpan.FromSeconds(20), Rate = 80, Transport = TransportMode.Http,
            Misbehave = Misbehaviour.Range | Misbehaviour.Seq | Misbehaviour.Dup, MisbehaveRate = 0.1, Seed = 21,
        }), TimeProvider.System).RunAsync(CancellationToken.None);

        var projector = DepinProcess.Start(host, "projections", environment);
        var kills = 0;
        try
        {
            // At least five kills however long the fleet takes on a busy machine.
            while (!simulation.IsCompleted || kills < 5)
            {
                var pause = Task.Delay(TimeSpan.FromMilliseconds(random.Next(1_000, 3_500)));
                await (simulation.IsCompleted ? pause : Task.WhenAny(simulation, pause));
                projector.Dispose();
                kills++;
                projector = DepinProcess.Start(host, "projections", environment);
            }
            await simulation;
            await Streams.PipelineProbe.WaitForProcessorsAsync(host, host.RawTopic);
            try
            {
                await LakeProbe.WaitForLakeAsync(host, timeout: TimeSpan.FromSeconds(90));
                await WaitForCompactionAsync(host);
            }
            catch (TimeoutException e)
            {
                throw new TimeoutException(e.Message + "\n" + string.Join('\n', projector.Output.Split('\n').TakeLast(20)), e);
            }
        }
        finally
        {
            projector.Dispose();
        }

        // Killed last, and nothing has recovered since: a commit publishes its files before recording them.
        var manifest = host.Lake.Manifest(LakeProjector.LiveLake);
        var committed = await manifest.FilesAsync(CancellationToken.None);
        Assert.All(committed, f => Assert.True(File.Exists(Path.Combine(lakeDirectory, f.Path)), $"{f.Path} is committed but not on disk"));

        // Lose the largest vehicle file (most likely compacted from several batches), and leave a stray file and a
        // staged one: recovery writes the first again and records its digest, and drops the others.
        var options = new LakeOptions { Directory = lakeDirectory };
        var lost = committed.Where(f => f.Dataset == LakeDatasets.VehicleSignals).MaxBy(f => f.Rows)!;
        File.Delete(Path.Combine(lakeDirectory, lost.Path));
        var stray = Path.Combine(lakeDirectory, LakeDatasets.VehicleSignals, $"date={lost.Date:yyyy-MM-dd}", "part-0-0.parquet");
        await File.WriteAllBytesAsync(stray, [1, 2, 3]);
        var staged = Path.Combine(lakeDirectory, ".staging", lost.Path);
        Directory.CreateDirectory(Path.GetDirectoryName(staged)!);
        await File.WriteAllBytesAsync(staged, [1, 2, 3]);
        await new LakeWriter(host.Lake, manifest, lakeDirectory, options, null, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance).RecoverAsync(CancellationToken.None);
        var restored = Assert.Single(await manifest.FilesAsync(CancellationToken.None), f => f.Path == lost.Path);
        Assert.Equal(lost with { Sha256 = restored.Sha256 }, restored);
        Assert.Equal(restored.Sha256, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(lakeDirectory, lost.Path)))));
        Assert.False(File.Exists(stray));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(lakeDirectory, ".staging"), "*", SearchOption.AllDirectories));

        var (partitions, through, rebuilt) = await LakeRebuild.RunAsync(host.Lake, host.DataDirectory, options, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, null, CancellationToken.None);
        Assert.Equal(await LakeProbe.LastEventAsync(host), through);
        Assert.Contains(partitions, p => p.Dataset == LakeDatasets.VehicleSignals && p.LiveRows > 100);
        Assert.Contains(partitions, p => p.Dataset == LakeDatasets.ReadingRejections && p.LiveRows > 0);
        Assert.All(partitions, p => Assert.True(p.Equal, $"{p.Dataset} {p.Date}: live {p.LiveRows} rows {p.LiveHash}, rebuilt {p.RebuiltRows} rows {p.RebuiltHash}"));

        using var lake = await LakeProbe.OpenAsync(host, lakeDirectory);
        var accepted = (await Streams.PipelineProbe.AcceptedAsync(host)).Count;
        var rejected = (await Streams.PipelineProbe.RejectedAsync(host)).Count;
        var counts = LakeProbe.Query(lake, """
            SELECT (SELECT count(*) FROM vehicle_signals) + (SELECT count(*) FROM weather_observations) AS readings,
                   (SELECT count(DISTINCT reading_id) FROM vehicle_signals) + (SELECT count(DISTINCT reading_id) FROM weather_observations) AS distinct_readings,
                   (SELECT count(*) FROM reading_rejections) AS rejections
            """).Single();
        Assert.Equal((long)accepted, counts["readings"]);
        Assert.Equal((long)accepted, counts["distinct_readings"]);
        Assert.Equal((long)rejected, counts["rejections"]);
        Directory.Delete(rebuilt, recursive: true);
        Directory.Delete(lakeDirectory, recursive: true);
    }
}
