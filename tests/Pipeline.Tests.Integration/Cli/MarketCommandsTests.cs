using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Pipeline.Cli.Commands;
using Pipeline.Cli.Hosting;
using Pipeline.Infra.Hosting;
using Pipeline.Marketplace.Accounts;
using Pipeline.Tests.Integration.Marketplace;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Cli;

/// <summary>
/// `depin query` and `depin export` as a buyer runs them: the real CLI process, a client of the marketplace API on a
/// real host over the test's lake, with a key made by the operator and a grant bought over HTTP.
/// </summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class MarketCommandsTests(StackFixture fixture) : IAsyncLifetime
{
    private static readonly string Dll = Path.Combine(AppContext.BaseDirectory, "depin.dll");
    private readonly MarketLake _lake = new();
    private readonly string _folder = Directory.CreateTempSubdirectory("market-cli-").FullName;
    private TestHost _host = null!;
    private string _key = "";
    private string _grant = "";

    public async Task InitializeAsync()
    {
        var operatorKeyFile = Path.Combine(_folder, "operator", "operator-key.sha256");
        var operatorKey = new OperatorKey(operatorKeyFile).CreateIfMissing()!;
        _host = await TestHost.StartAsync(fixture, Roles.Api, new Dictionary<string, string?>
        {
            ["Lake:Directory"] = _lake.Root,
            ["Marketplace:OperatorKeyFile"] = operatorKeyFile,
            ["Marketplace:CreditsPerThousandRows:vehicle_signals"] = "1000",
        }, schema: "it_market_cli");
        await _lake.PublishAsync(_host);
        var buyer = await PostAsync(operatorKey, "/v1/buyers", new { name = "cli buyer", credits = 10_000 });
        _key = buyer.GetProperty("apiKey").GetString()!;
        var grant = await PostAsync(_key, "/v1/grants", new
        {
            dataset = "vehicle_signals",
            from = new DateTimeOffset(2026, 11, 23, 0, 0, 0, TimeSpan.Zero),
            devices = new[] { MarketLake.Devices[1] },
            rowQuota = 10_000,
            expiresAt = DateTimeOffset.UtcNow.AddDays(1),
        });
        _grant = grant.GetProperty("id").GetString()!;
    }

    public async Task DisposeAsync()
    {
        await _host.DisposeAsync();
        _lake.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    private List<VehicleRow> Granted => _lake.Rows.Where(r => r.Device == MarketLake.Devices[1]).OrderBy(r => r.EventSeq).ToList();

    [Fact]
    public async Task Query_AsCsvAndParquet_ReturnsExactlyTheGrantedRows()
    {
        var csv = Path.Combine(_folder, "rows.csv");
        var run = await DepinAsync(_key, "query", "SELECT event_seq, reading_id FROM vehicle_signals ORDER BY event_seq", "--grant", _grant, "--format", "csv", "--out", csv);
        Assert.True(run.ExitCode == 0, run.Output);
        Assert.Equal(["event_seq,reading_id", .. Granted.Select(r => $"{r.EventSeq},{r.ReadingId}")], File.ReadAllLines(csv));
        Assert.Contains($"{Granted.Count} rows at lake checkpoint {_lake.Rows.Max(r => r.EventSeq)}", run.Errors, StringComparison.Ordinal);

        var parquet = Path.Combine(_folder, "rows.parquet");
        run = await DepinAsync(_key, "query", "SELECT event_seq, reading_id, speed_kmh FROM vehicle_signals ORDER BY event_seq", "--grant", _grant, "--format", "parquet", "--out", parquet);
        Assert.True(run.ExitCode == 0, run.Output);
        await using var file = File.OpenRead(parquet);
        Assert.Equal(Granted.Select(r => (r.EventSeq, r.ReadingId, r.SpeedKmh)), await MarketLake.ReadParquetAsync(file));
    }

    [Fact]
    public async Task Query_AsTable_PrintsTheColumnsAndRows()
    {
        var run = await DepinAsync(_key, "query", "SELECT device, count(*) AS readings FROM vehicle_signals GROUP BY device", "--grant", _grant);
        Assert.True(run.ExitCode == 0, run.Output);
        var lines = run.Output.Split('\n', StringSplitOptions.TrimEntries);
        Assert.Equal("device                                     | readings", lines[0]);
        Assert.Equal($"{MarketLake.Devices[1]} | {Granted.Count,8}", lines[2]);
    }

    [Theory]
    [InlineData("dmk_wrong", "SELECT 1", "error: unknown_key: ")]
    [InlineData(null, "SELECT * FROM read_csv('/etc/passwd')", "error: table_function: ")]
    [InlineData(null, "COPY vehicle_signals TO '/tmp/stolen.csv'", "error: not_select: ")]
    public async Task Query_RefusedByTheApi_PrintsTheReasonAndDetailOnOneLine(string? key, string sql, string expected)
    {
        var run = await DepinAsync(key ?? _key, "query", sql, "--grant", _grant);
        Assert.Equal(CommandLineErrors.ExitCode, run.ExitCode);
        var line = Assert.Single(run.Errors.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith(expected, line, StringComparison.Ordinal);
        Assert.True(line.Length > expected.Length + 10, line);
    }

    [Fact]
    public async Task Query_WithoutAKey_SaysHowToGiveOne()
    {
        var run = await DepinAsync(null, "query", "SELECT 1", "--grant", _grant);
        Assert.Equal(CommandLineErrors.ExitCode, run.ExitCode);
        Assert.Contains(MarketCommands.KeyVariable, run.Errors, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Export_DownloadsVerifiedFilesWhoseRowsAreTheGrantsAndWhoseManifestTheMarketplaceSigned()
    {
        var folder = Path.Combine(_folder, "export");
        var run = await DepinAsync(_key, "export", "--grant", _grant, "--shards", "2", "--out", folder);
        Assert.True(run.ExitCode == 0, run.Output);
        Assert.Contains("every SHA-256 matches", run.Output, StringComparison.Ordinal);

        // Checked again here, independently of the CLI: ethers recovers the signer, the files' rows are the grant's.
        var manifestText = await File.ReadAllTextAsync(Path.Combine(folder, "manifest.json"));
        var signer = JsonDocument.Parse(await _host.Api.GetStringAsync("/v1/marketplace")).RootElement.GetProperty("signer").GetString()!;
        Assert.Equal(signer.ToLowerInvariant(), RepositoryTools.EthersRecover(manifestText, await File.ReadAllTextAsync(Path.Combine(folder, "manifest.json.sig"))));
        var read = new List<(long Seq, string Id, double? Speed)>();
        var files = JsonDocument.Parse(manifestText).RootElement.GetProperty("files").EnumerateArray().ToList();
        var paths = files.Select(f => f.GetProperty("path").GetString()!).ToList();
        Assert.Contains(paths, p => p.Contains("shard=0/", StringComparison.Ordinal));
        Assert.Contains(paths, p => p.Contains("shard=1/", StringComparison.Ordinal));
        foreach (var entry in files)
        {
            await using var file = File.OpenRead(Path.Combine(folder, entry.GetProperty("path").GetString()!));
            read.AddRange(await MarketLake.ReadParquetAsync(file));
        }
        Assert.Equal(Granted.Select(r => (r.EventSeq, r.ReadingId, r.SpeedKmh)), read.OrderBy(r => r.Seq));
    }

    [Fact]
    public async Task Export_OfAnUnknownGrant_PrintsTheReasonOnOneLine()
    {
        var run = await DepinAsync(_key, "export", "--grant", "no-such-grant", "--out", Path.Combine(_folder, "none"));
        Assert.Equal(CommandLineErrors.ExitCode, run.ExitCode);
        Assert.StartsWith("error: unknown_grant: ", Assert.Single(run.Errors.Split('\n', StringSplitOptions.RemoveEmptyEntries)), StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_folder, "none")));
    }

    private async Task<DepinRun> DepinAsync(string? key, params string[] arguments)
    {
        var start = new ProcessStartInfo("dotnet", [Dll, .. arguments, "--api", _host.Api.BaseAddress!.ToString()])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = _folder,
        };
        start.Environment.Remove(MarketCommands.KeyVariable);
        if (key is not null) start.Environment[MarketCommands.KeyVariable] = key;
        var run = new DepinRun(Process.Start(start)!);
        await run.WaitForExitAsync(TimeSpan.FromMinutes(2));
        return run;
    }

    private async Task<JsonElement> PostAsync(string key, string path, object body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body, options: ServiceDefaults.WireJson) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        using var response = await _host.Api.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, text);
        return JsonDocument.Parse(text).RootElement.Clone();
    }
}
