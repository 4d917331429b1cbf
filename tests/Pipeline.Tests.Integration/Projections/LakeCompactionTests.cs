using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Envelope;
using Pipeline.Core.Events;
using Pipeline.Infra.Hosting;
using Pipeline.Projections.Lake;
using Pipeline.Registry;

namespace Pipeline.Tests.Integration.Projections;

/// <summary>
/// Issue 16: compaction runs beside the projection rounds, so the lake's checkpoint may move between listing a day's
/// files and swapping them for the merged one. The swap happens at the checkpoint the lake has then, keeps what the
/// rounds added meanwhile, and never replaces a file twice.
/// </summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class LakeCompactionTests(StackFixture fixture)
{
    private static readonly DateOnly Day = new(2026, 11, 23);
    private static readonly DateTimeOffset Noon = new(Day, new TimeOnly(12, 0), TimeSpan.Zero);

    private static LakeFile DayFile(long first, long last) =>
        new($"{LakeDatasets.VehicleSignals}/date={Day:yyyy-MM-dd}/part-{first}-{last}.parquet", LakeDatasets.VehicleSignals, Day, first, last, (int)(last - first + 1), "test");

    [Fact]
    public async Task Compaction_SwappedAfterARoundCommitted_ReplacesItsInputsAtTheNewCheckpoint_AndKeepsTheRoundsFile()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.None, schema: "it_lake_compaction_round");
        var manifest = host.Lake.Manifest(LakeProjector.LiveLake);
        await manifest.EnsureSchemaAsync(CancellationToken.None);
        var (a, b, round, merged) = (DayFile(1, 5), DayFile(6, 10), DayFile(11, 20), DayFile(1, 10));
        Assert.True(await manifest.CommitAsync(0, 10, [a, b], [], () => { }, CancellationToken.None));
        // Compaction listed a and b; a round commits before it swaps them.
        Assert.True(await manifest.CommitAsync(10, 20, [round], [], () => { }, CancellationToken.None));

        var published = false;
        Assert.True(await manifest.ReplaceAsync(merged, [a, b], () => published = true, CancellationToken.None));

        Assert.True(published);
        Assert.Equal([merged, round], await manifest.FilesAsync(CancellationToken.None));
        Assert.Equal(20, await manifest.CheckpointAsync(CancellationToken.None));
        // Snapshots: before the swap's checkpoint the inputs, from it the merged file; the rows are the same either way.
        Assert.Equal([a, b], (await manifest.FilesAtAsync(10, CancellationToken.None)).Files);
        Assert.Equal([merged, round], (await manifest.FilesAtAsync(20, CancellationToken.None)).Files);
        // The next round commits from the checkpoint it knows: the swap did not move it.
        Assert.True(await manifest.CommitAsync(20, 25, [DayFile(21, 25)], [], () => { }, CancellationToken.None));
    }

    [Fact]
    public async Task Compaction_WhoseInputWasReplacedMeanwhile_ChangesNothingAndPublishesNothing()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.None, schema: "it_lake_compaction_twice");
        var manifest = host.Lake.Manifest(LakeProjector.LiveLake);
        await manifest.EnsureSchemaAsync(CancellationToken.None);
        var (a, b, c) = (DayFile(1, 5), DayFile(6, 10), DayFile(11, 20));
        Assert.True(await manifest.CommitAsync(0, 20, [a, b, c], [], () => { }, CancellationToken.None));
        // Another leader's compaction merged a and b first.
        Assert.True(await manifest.ReplaceAsync(DayFile(1, 10), [a, b], () => { }, CancellationToken.None));

        var published = false;
        Assert.False(await manifest.ReplaceAsync(DayFile(6, 20), [b, c], () => published = true, CancellationToken.None));

        Assert.False(published);
        Assert.Equal([DayFile(1, 10), c], await manifest.FilesAsync(CancellationToken.None));
    }

    [Fact]
    public async Task Compaction_OfMoreFilesThanOneMergeReads_MergesThemInGroupsOfAtMostCompactMaxFiles_Issue16()
    {
        var directory = Directory.CreateTempSubdirectory("depin-lake-").FullName;
        try
        {
            await using var host = await TestHost.StartAsync(fixture, Roles.Api, schema: "it_lake_compaction_groups"); // the registry's documents
            const string device = "0x00000000000000000000000000000000000000c1";
            var manifest = await LiveLakeWithVehicleAsync(host, device);
            var writer = new LakeWriter(host.Lake, manifest, directory, new LakeOptions { Directory = directory, CompactAtFiles = 2, CompactMaxFiles = 3 }, null, NullLogger.Instance);
            // Seven rounds of two readings: seven small files of one day.
            for (var seq = 1; seq <= 14; seq += 2)
            {
                await AppendReadingsAsync(host, device, seq, seq + 1);
                await writer.ProjectAsync(until: null, CancellationToken.None);
            }
            Assert.Equal(7, (await manifest.FilesAsync(CancellationToken.None)).Count);

            // At most three inputs a merge, in groups that differ by one file at most: 2, 2 and 3 files.
            await writer.CompactAsync(force: true, CancellationToken.None);
            Assert.Equal([4, 4, 6], (await manifest.FilesAsync(CancellationToken.None)).Select(f => f.Rows));
            // The next compaction merges those three.
            await writer.CompactAsync(force: true, CancellationToken.None);
            Assert.Equal(14, Assert.Single(await manifest.FilesAsync(CancellationToken.None)).Rows);

            using var lake = await LakeProbe.OpenAsync(host, directory);
            var read = LakeProbe.Query(lake, "SELECT count(*) AS n, count(DISTINCT seq) AS readings, min(seq) AS low, max(seq) AS high FROM vehicle_signals").Single();
            Assert.Equal((14L, 14L, 1L, 14L), ((long)read["n"]!, (long)read["readings"]!, (long)read["low"]!, (long)read["high"]!));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task Projector_WhoseCompactionFails_KeepsProjecting_PublishesNothing_AndCompactsOnceTheInputReadsAgain_Issue16()
    {
        var directory = Directory.CreateTempSubdirectory("depin-lake-").FullName;
        try
        {
            await using var host = await TestHost.StartAsync(fixture, Roles.Api, schema: "it_lake_compaction_fails"); // the registry's documents
            const string device = "0x00000000000000000000000000000000000000d1";
            var manifest = await LiveLakeWithVehicleAsync(host, device);
            var options = new LakeOptions { Directory = directory, CompactAtFiles = 2, CompactionInterval = TimeSpan.FromMilliseconds(300), PollInterval = TimeSpan.FromMilliseconds(100) };
            var writer = new LakeWriter(host.Lake, manifest, directory, options, null, NullLogger.Instance);
            // Three small files of one day, the second of which cannot be read.
            for (var seq = 1; seq <= 6; seq += 2)
            {
                await AppendReadingsAsync(host, device, seq, seq + 1);
                await writer.ProjectAsync(until: null, CancellationToken.None);
            }
            var broken = Path.Combine(directory, (await manifest.FilesAsync(CancellationToken.None))[1].Path);
            var intact = await File.ReadAllBytesAsync(broken);
            await File.WriteAllBytesAsync(broken, "not a parquet file"u8.ToArray());

            var failures = 0L;
            using var listener = new MeterListener();
            listener.InstrumentPublished = (instrument, l) =>
            {
                if (instrument is { Name: "pipeline.lake.compaction.failures", Meter.Name: LakeMetrics.MeterName }) l.EnableMeasurementEvents(instrument);
            };
            listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref failures, value));
            listener.Start();
            var metrics = new LakeMetrics(host.App.Services.GetRequiredService<IMeterFactory>(), TimeProvider.System);
            var projector = new LakeProjector(host.Lake, Options.Create(new DataOptions()), Options.Create(options), metrics, NullLogger<LakeProjector>.Instance);
            await projector.StartAsync(CancellationToken.None);
            try
            {
                await WaitUntilAsync(() => Task.FromResult(Interlocked.Read(ref failures) >= 1), "a compaction failed");
                // Rounds go on after it: new readings reach the lake.
                await AppendReadingsAsync(host, device, 7, 8);
                await LakeProbe.WaitForLakeAsync(host, timeout: TimeSpan.FromSeconds(30));
                // And compaction tries again a CompactionInterval later, still publishing nothing.
                await WaitUntilAsync(() => Task.FromResult(Interlocked.Read(ref failures) >= 2), "compaction tried again");
                Assert.False(projector.ExecuteTask!.IsCompleted);
                var files = await manifest.FilesAsync(CancellationToken.None);
                Assert.Equal(4, files.Count);
                Assert.Equal(files.Select(f => Path.GetFullPath(Path.Combine(directory, f.Path))).Order(),
                    Directory.EnumerateFiles(directory, "*.parquet", SearchOption.AllDirectories).Select(Path.GetFullPath).Order());

                // The cause gone, the next compaction merges the day.
                await File.WriteAllBytesAsync(broken, intact);
                await WaitUntilAsync(async () => (await manifest.FilesAsync(CancellationToken.None)).Count == 1, "the day was compacted");
                Assert.Equal(8, Assert.Single(await manifest.FilesAsync(CancellationToken.None)).Rows);
            }
            finally
            {
                await projector.StopAsync(CancellationToken.None);
            }
            using var lake = await LakeProbe.OpenAsync(host, directory);
            var read = LakeProbe.Query(lake, "SELECT count(*) AS n, count(DISTINCT seq) AS readings FROM vehicle_signals").Single();
            Assert.Equal((8L, 8L), ((long)read["n"]!, (long)read["readings"]!));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>The live lake's manifest, its tables made, and <paramref name="device"/> registered as a vehicle (the projector names its rows' kind from the registry).</summary>
    private static async Task<LakeManifest> LiveLakeWithVehicleAsync(TestHost host, string device)
    {
        var manifest = host.Lake.Manifest(LakeProjector.LiveLake);
        await manifest.EnsureSchemaAsync(CancellationToken.None);
        await using var session = host.Store.LightweightSession();
        session.Store(new Device { Id = device, Owner = "0x00000000000000000000000000000000000000f0", Kind = DeviceKind.Vehicle, RegisteredAt = Noon, UpdatedAt = Noon });
        await session.SaveChangesAsync();
        return manifest;
    }

    /// <summary>Reading events of <paramref name="device"/> numbered <paramref name="seqs"/>, a second apart from <see cref="Noon"/>.</summary>
    private static async Task AppendReadingsAsync(TestHost host, string device, params int[] seqs)
    {
        await using var session = host.Store.LightweightSession();
        foreach (var n in seqs)
            session.Events.Append(device, new ReadingAccepted($"0x{n:x64}", n, Noon.AddSeconds(n), Noon.AddSeconds(n), new Dictionary<string, double> { ["Vehicle.Speed"] = n }, 0, n));
        await session.SaveChangesAsync();
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"Waited 30 s in vain until {what}.");
            await Task.Delay(50);
        }
    }
}
