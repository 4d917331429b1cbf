using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Marten;
using Npgsql;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Events;
using Pipeline.Marketplace.ExportJobs;

namespace Pipeline.Tests.Integration.Marketplace;

/// <summary>
/// Export jobs with two API replicas on one database and one export folder (issue 16's deployment): a job is answered,
/// and its files served, by the replica that did not run it; a runner killed mid-job, or whose job another replica
/// failed, leaves a failed job with its reason and no charge.
/// </summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class ExportJobReplicaTests(StackFixture fixture) : IAsyncLifetime
{
    private const string HeartbeatTimeout = "00:00:02";
    private MarketTestHost _market = null!;

    public async Task InitializeAsync() => _market = await MarketTestHost.StartAsync(fixture, "it_export_replicas", new Dictionary<string, string?>
    {
        ["Marketplace:ExportHeartbeatTimeout"] = HeartbeatTimeout,
    });

    public async Task DisposeAsync() => await _market.DisposeAsync();

    [Fact]
    public async Task ExportJob_StartedOnOneReplica_IsPolledAndDownloadedOnTheOther_Issue16()
    {
        await using var other = await _market.StartReplicaAsync(fixture);
        var (_, key) = await _market.CreateBuyerAsync(credits: 2000);
        var grant = await _market.BuyAsync(key, GrantBody([MarketLake.Devices[1]]));

        var id = await StartExportAsync(key, grant.Id, _market.Host.Api);
        var job = await FinishedAsync(key, id, other.Api);
        Assert.True(job.GetProperty("status").GetString() == "done", job.ToString());
        Assert.Equal(_market.Lake.Rows.Count(r => r.Device == MarketLake.Devices[1]), job.GetProperty("rows").GetInt64());

        var manifest = JsonDocument.Parse(await (await _market.SendAsync(HttpMethod.Get, $"/v1/exports/{id}/manifest", key, api: other.Api)).Content.ReadAsStringAsync()).RootElement;
        foreach (var file in manifest.GetProperty("files").EnumerateArray())
        {
            var bytes = await (await _market.SendAsync(HttpMethod.Get, $"/v1/exports/{id}/files/{file.GetProperty("path").GetString()}", key, api: other.Api)).Content.ReadAsByteArrayAsync();
            Assert.Equal(file.GetProperty("sha256").GetString(), Convert.ToHexStringLower(SHA256.HashData(bytes)));
        }

        // A replica that does not mount the export folder says so, and does not call the export unknown.
        var elsewhere = Directory.CreateTempSubdirectory("depin-replica-").FullName;
        await using (var unmounted = await TestHost.StartAsync(fixture, Roles.Api, new Dictionary<string, string?>
                     {
                         ["EventStore:Schema"] = _market.Host.Schema,
                         ["Lake:Directory"] = _market.Lake.Root,
                         ["Marketplace:OperatorKeyFile"] = _market.OperatorKeyFile,
                         ["Data:Directory"] = elsewhere,
                     }))
        {
            Assert.Equal("done", (await JobAsync(key, id, unmounted.Api)).GetProperty("status").GetString());
            await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Get, $"/v1/exports/{id}/manifest", key, api: unmounted.Api), HttpStatusCode.ServiceUnavailable, "export_files_unavailable");
        }
        Directory.Delete(elsewhere, recursive: true);
    }

    [Fact]
    public async Task ExportJob_WhoseReplicaIsKilledMidJob_FailsWithAReasonOnTheOther_AndChargesNothing_Issue16()
    {
        var (buyer, key) = await _market.CreateBuyerAsync(credits: 2000);
        var grant = await _market.BuyAsync(key, GrantBody([MarketLake.Devices[0]]));
        var port = TestHost.FreePort();
        using var runner = DepinProcess.Start(_market.Host, "api", new Dictionary<string, string>
        {
            ["PIPELINE_DATA"] = _market.Host.DataDirectory,
            ["PIPELINE_API_PORT"] = $"{port}",
            ["PIPELINE_CHAIN"] = fixture.Settings["Chain:RpcUrl"]!,
            ["PIPELINE_Lake__Directory"] = _market.Lake.Root,
            ["PIPELINE_Marketplace__OperatorKeyFile"] = _market.OperatorKeyFile,
            ["PIPELINE_Marketplace__ExportHeartbeatTimeout"] = HeartbeatTimeout,
        });
        using var runnerApi = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        await HealthyAsync(runner, runnerApi);

        string id;
        // The buyer's stream held by another transaction: the runner writes the files, then waits to charge them.
        await using (var held = await HoldStreamAsync(buyer))
        {
            id = await StartExportAsync(key, grant.Id, runnerApi);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            // The runner's heartbeat writes progress twice a second; a queued job has no stage yet (left out of the JSON).
            while (!((await JobAsync(key, id, _market.Host.Api)).TryGetProperty("stage", out var stage) && stage.GetString() == "done"))
                await Task.Delay(50, timeout.Token);
            runner.Kill();
        }

        var job = await FinishedAsync(key, id, _market.Host.Api);
        Assert.Equal("failed", job.GetProperty("status").GetString());
        var error = job.GetProperty("error").GetString()!;
        Assert.Contains("stopped: its last heartbeat was at", error, StringComparison.Ordinal);
        Assert.Contains("Nothing was charged", error, StringComparison.Ordinal);
        Assert.False(Directory.Exists(_market.Host.Create<ExportQueue>().FolderOf(id)));
        await AssertNothingChargedAsync(buyer, key);
    }

    [Fact]
    public async Task ExportJob_FailedByAnotherReplicaWhileItRuns_KeepsThatReason_AndIsNeverCharged_Issue16()
    {
        var (buyer, key) = await _market.CreateBuyerAsync(credits: 2000);
        var grant = await _market.BuyAsync(key, GrantBody([MarketLake.Devices[2]]));
        var queue = _market.Host.Create<ExportQueue>();

        var id = await StartExportAsync(key, grant.Id, _market.Host.Api);
        // As a replica that found the runner silent would: whatever step the runner is at (queued, writing, charging),
        // it must stop without a charge and leave the job as the other replica failed it.
        await _market.Host.ExecuteAsync($"UPDATE {_market.Host.Schema}.{ExportJobStore.TableName} SET status = 'failed', error = 'taken over by the test' WHERE id = '{id}'");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (Directory.Exists(queue.FolderOf(id))) await Task.Delay(20, timeout.Token); // the runner deletes its files when it stops

        var job = await JobAsync(key, id, _market.Host.Api);
        Assert.Equal(("failed", "taken over by the test"), (job.GetProperty("status").GetString(), job.GetProperty("error").GetString()));
        await AssertNothingChargedAsync(buyer, key);
    }

    private static object GrantBody(string[] devices) => new
    {
        dataset = "vehicle_signals",
        from = new DateTimeOffset(2026, 11, 23, 0, 0, 0, TimeSpan.Zero),
        rowQuota = 2000,
        devices,
        expiresAt = DateTimeOffset.UtcNow.AddDays(1),
    };

    private async Task<string> StartExportAsync(string key, string grantId, HttpClient api)
    {
        var started = await _market.SendAsync(HttpMethod.Post, "/v1/exports", key, new { grant = grantId }, api);
        Assert.True(started.StatusCode == HttpStatusCode.Accepted, await started.Content.ReadAsStringAsync());
        return (await started.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;
    }

    private async Task<JsonElement> JobAsync(string key, string id, HttpClient api, string query = "")
    {
        var response = await _market.SendAsync(HttpMethod.Get, $"/v1/exports/{id}{query}", key, api: api);
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    /// <summary>The job once it is done or failed, as <paramref name="api"/> answers one request that waits for it (a replica that does not run the job reads it again at each heartbeat).</summary>
    private Task<JsonElement> FinishedAsync(string key, string id, HttpClient api) => JobAsync(key, id, api, "?wait=60");

    private static async Task HealthyAsync(DepinProcess process, HttpClient api)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        while (true)
        {
            Assert.True(process.Running, "depin api exited:\n" + process.Output);
            try
            {
                if ((await api.GetAsync("/health", timeout.Token)).StatusCode == HttpStatusCode.OK) return;
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }
            await Task.Delay(100, timeout.Token);
        }
    }

    /// <summary>A connection whose open transaction holds the buyer's stream row, so any append to it waits until the connection closes (rolling it back).</summary>
    private async Task<NpgsqlConnection> HoldStreamAsync(string buyer)
    {
        var connection = new NpgsqlConnection(_market.Host.PostgresConnectionString);
        await connection.OpenAsync();
        var transaction = await connection.BeginTransactionAsync();
        await using var command = new NpgsqlCommand($"SELECT 1 FROM {_market.Host.Schema}.mt_streams WHERE id = $1 FOR UPDATE", connection, transaction) { Parameters = { new() { Value = buyer } } };
        Assert.Equal(1, await command.ExecuteScalarAsync());
        return connection;
    }

    private async Task AssertNothingChargedAsync(string buyer, string key)
    {
        var grant = (await _market.AccountAsync(key)).Grants.Single();
        Assert.Equal((0L, 0L, 0L), (grant.RowsUsed, grant.BytesUsed, grant.CreditsUsed));
        await using var session = _market.Host.Store.QuerySession();
        var events = (await session.Events.QueryAllRawEvents().Where(e => e.StreamKey == buyer).ToListAsync()).Select(e => e.Data).ToList();
        Assert.DoesNotContain(events, e => e is ExportCharged or DataSold);
    }
}
