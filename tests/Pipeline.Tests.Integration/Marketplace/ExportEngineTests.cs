using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Pipeline.Core.Crypto;
using Pipeline.Marketplace.Exports;
using Pipeline.Marketplace.Sandbox;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Marketplace;

/// <summary>Exports checked by readers and tools that are not ours: Parquet.Net, the IPFS importer, ethers.</summary>
[Trait("Category", "Integration")]
public sealed class ExportEngineTests(MarketLakeFixture fixture) : IClassFixture<MarketLakeFixture>, IDisposable
{
    private static readonly DateTimeOffset Nov23 = new(2026, 11, 23, 0, 0, 0, TimeSpan.Zero);
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "market-export-" + Guid.NewGuid().ToString("n"));
    private readonly EthKey _marketplace = EthKey.Generate();
    private MarketLake Lake => fixture.Lake;

    [Fact]
    public async Task Export_ThreeShards_WritesHivePartitionedEqualShardsHoldingTheQueryResultRowForRow()
    {
        var progress = new List<ExportProgress>();
        var export = await ExportEngine.ExportAsync(new ExportRequest(Lake.Grant(), _folder, 3, 1, 1800, 1800), _marketplace, TimeProvider.System,
            new SynchronousProgress(progress.Add), CancellationToken.None);

        var manifest = export.Manifest;
        Assert.All(manifest.Files, f => Assert.Matches(@"^data/shard=[0-2]/date=2026-11-2[34]/part-0\.parquet$", f.Path));
        Assert.Equal(1200, manifest.Rows);
        Assert.Equal([400L, 400L, 400L], manifest.Files.GroupBy(f => f.Path[..12]).Select(g => g.Sum(f => f.Rows)));
        Assert.Equal(["shard", "date"], manifest.PartitionedBy);
        Assert.Contains(new ExportColumn("reading_id", "VARCHAR"), manifest.Schema);

        // Row for row: what Parquet.Net reads from the files is what a query of the same grant returns.
        var exported = new List<(long Seq, string Id, double? Speed)>();
        foreach (var file in manifest.Files)
        {
            await using var stream = File.OpenRead(Path.Combine(_folder, file.Path));
            var rows = await MarketLake.ReadParquetAsync(stream);
            Assert.Equal(file.Rows, rows.Count);
            exported.AddRange(rows);
        }
        using var sandbox = SqlSandbox.Open([Lake.Grant()], new SandboxLimits());
        using var output = new MemoryStream();
        await sandbox.RunAsync("SELECT event_seq, reading_id, speed_kmh FROM vehicle_signals ORDER BY event_seq", ResultFormat.Json, output, 10_000, 1, CancellationToken.None);
        var queried = JsonDocument.Parse(output.ToArray()).RootElement.EnumerateArray()
            .Select(e => (e.GetProperty("event_seq").GetInt64(), e.GetProperty("reading_id").GetString()!, e.GetProperty("speed_kmh").ValueKind == JsonValueKind.Null ? (double?)null : e.GetProperty("speed_kmh").GetDouble()));
        Assert.Equal(queried, exported.OrderBy(r => r.Seq));

        Assert.Equal(ExportStage.Done, progress[^1].Stage);
        Assert.Contains(new ExportProgress(ExportStage.Hashing, manifest.Files.Count, manifest.Files.Count), progress);
    }

    [Fact]
    public async Task Export_Manifest_DigestsMatchTheFilesAndCidsMatchTheIpfsImporter()
    {
        var export = await ExportEngine.ExportAsync(new ExportRequest(Lake.Grant(), _folder, 1, 1, 1800, 1800), _marketplace, TimeProvider.System, null, CancellationToken.None);

        var files = export.Manifest.Files;
        Assert.All(files, f => Assert.Matches(@"^data/date=2026-11-2[34]/part-0\.parquet$", f.Path));
        foreach (var file in files)
        {
            var bytes = await File.ReadAllBytesAsync(Path.Combine(_folder, file.Path));
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), file.Sha256);
            Assert.Equal(bytes.Length, file.Bytes);
        }
        var script = await File.ReadAllTextAsync(Path.Combine(RepositoryTools.Root, "tests", "Pipeline.Tests.Unit", "Marketplace", "unixfs-cid.mjs"));
        var theirs = RepositoryTools.Run("node", ["--input-type=module", "-e", script, .. files.Select(f => Path.Combine(_folder, f.Path))], workingDirectory: RepositoryTools.ToolsFolder);
        Assert.Equal(theirs.Split('\n'), files.Select(f => f.Cid));
    }

    [Fact]
    public async Task Export_ManifestSignature_RecoversToTheMarketplaceWithEthers()
    {
        var export = await ExportEngine.ExportAsync(new ExportRequest(Lake.Grant(), _folder, 2, 11, 1800, 1812), _marketplace, TimeProvider.System, null, CancellationToken.None);

        var text = await File.ReadAllTextAsync(Path.Combine(_folder, ExportEngine.ManifestFile));
        var signature = await File.ReadAllTextAsync(Path.Combine(_folder, ExportEngine.SignatureFile));
        Assert.Equal(export.ManifestBytes, Encoding.UTF8.GetBytes(text));
        Assert.Equal(_marketplace.Address.ToString().ToLowerInvariant(), RepositoryTools.EthersRecover(text, signature));
        Assert.NotEqual(_marketplace.Address.ToString().ToLowerInvariant(), RepositoryTools.EthersRecover(text.Replace("\"rows\":1200", "\"rows\":1201", StringComparison.Ordinal), signature));

        var manifest = JsonDocument.Parse(text).RootElement;
        Assert.Equal(11, manifest.GetProperty("firstEventSequence").GetInt64());
        Assert.Equal(1800, manifest.GetProperty("lastEventSequence").GetInt64());
        Assert.Equal(1812, manifest.GetProperty("lakeCheckpoint").GetInt64());
        Assert.Equal(_marketplace.Address.ToString(), manifest.GetProperty("signer").GetString());
    }

    [Fact]
    public async Task Export_RestrictedGrant_HoldsOnlyTheGrantedRows()
    {
        var rows = new RowRestriction(Nov23.AddHours(3), Nov23.AddHours(40), new BoundingBox(52.2, -7, 53.8, -6.55), [MarketLake.Devices[1]]);
        var export = await ExportEngine.ExportAsync(new ExportRequest(Lake.Grant(rows: rows), _folder, 1, 1, 1800, 1800), _marketplace, TimeProvider.System, null, CancellationToken.None);

        var ids = new List<string>();
        foreach (var file in export.Manifest.Files)
        {
            await using var stream = File.OpenRead(Path.Combine(_folder, file.Path));
            ids.AddRange((await MarketLake.ReadParquetAsync(stream)).Select(r => r.Id));
        }
        var expected = Lake.Expected(rows);
        Assert.NotEmpty(expected);
        Assert.Equal(expected.Select(r => r.ReadingId).Order(), ids.Order());
        Assert.Equal(rows, export.Manifest.Slice);
    }

    [Fact]
    public async Task Export_CancelledBeforeItStarts_WritesNoManifest()
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => ExportEngine.ExportAsync(new ExportRequest(Lake.Grant(), _folder, 2, 1, 1, 1), _marketplace, TimeProvider.System, null, cancelled.Token));
        Assert.False(File.Exists(Path.Combine(_folder, ExportEngine.ManifestFile)));
    }

    [Fact]
    public void CountShares_BesideAnExportOfALargeSlice_StopsWhenTheJobDoes_NotAnsweredInPart()
    {
        // The count scans the whole slice, as the COPY does; a job that fails or is stopped must not wait for it.
        var lake = Path.Combine(Path.GetTempPath(), "market-large-" + Guid.NewGuid().ToString("n"));
        try
        {
            using var export = ExportEngine.Open(new ExportRequest(MarketLake.LargeSlice(lake), _folder, 1, 1, 1, 1));
            using var stop = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));

            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            Assert.ThrowsAny<OperationCanceledException>(() => export.CountShares(TimeSpan.FromHours(1), stop.Token));
            var took = System.Diagnostics.Stopwatch.GetElapsedTime(started);

            Assert.True(took < TimeSpan.FromSeconds(3), $"The count was stopped only after {took.TotalMilliseconds:0} ms.");
        }
        finally
        {
            Directory.Delete(lake, recursive: true);
        }
    }

    [Fact]
    public async Task Export_IntoAFolderThatIsNotEmpty_IsRefused()
    {
        Directory.CreateDirectory(_folder);
        await File.WriteAllTextAsync(Path.Combine(_folder, "keep.txt"), "mine");
        var error = await Assert.ThrowsAsync<ArgumentException>(() => ExportEngine.ExportAsync(new ExportRequest(Lake.Grant(), _folder, 0, 1, 1, 1), _marketplace, TimeProvider.System, null, CancellationToken.None));
        Assert.Contains("not empty", error.Message);
        Assert.Contains("Shards must be", error.Message);
        Assert.Equal("mine", await File.ReadAllTextAsync(Path.Combine(_folder, "keep.txt")));
    }

    public void Dispose()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    /// <summary>Reports on the caller's thread, so the test sees every report before the export returns.</summary>
    private sealed class SynchronousProgress(Action<ExportProgress> report) : IProgress<ExportProgress>
    {
        public void Report(ExportProgress value) => report(value);
    }
}
