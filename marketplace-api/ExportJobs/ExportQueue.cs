using System.Collections.Concurrent;
using System.Text.Json;
using DuckDB.NET.Data;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Pipeline.Core.Events;
using Pipeline.Marketplace.Accounts;
using Pipeline.Marketplace.Attribution;
using Pipeline.Marketplace.Catalog;
using Pipeline.Marketplace.Exports;
using Pipeline.Marketplace.Query;
using Pipeline.Marketplace.Sandbox;

namespace Pipeline.Marketplace.ExportJobs;

public enum ExportStatus { Queued, Running, Done, Failed }

/// <summary>An export job as the buyer sees it.</summary>
public sealed record ExportJob(string Id, string GrantId, int Shards, ExportStatus Status, ExportStage? Stage, int Done, int Total, long? Rows, string? ChargeId, string? Error, DateTimeOffset CreatedAt);

/// <summary>
/// Export jobs: a grant's slice written by the engine (hive-partitioned Parquet, optional shards, a signed manifest)
/// into a folder of its own under the data folder, a few at a time in the background. The rows are charged once the
/// files are written and before anything can be downloaded; if the quota was used meanwhile, the files are deleted
/// and the job fails saying so. A job's state lives in memory and in its folder's job.json, so after a restart a
/// finished job is still there and one that was cut short says it failed.
/// </summary>
public sealed class ExportQueue(MarketAccounts accounts, MarketLake lake, GrantedQueries queries, DatasetCatalog catalog, MarketSigner signer, MarketMetrics metrics, string folder, ILogger<ExportQueue> logger)
{
    public const string JobFile = "job.json";
    private readonly ConcurrentDictionary<string, (string BuyerId, ExportJob Job)> _jobs = new();
    private readonly SemaphoreSlim _running = new(2, 2);

    public string FolderOf(string id) => Path.Combine(folder, id);

    public async Task<ExportJob> StartAsync(string buyerId, string grantId, int shards, MarketplaceOptions options, CancellationToken cancellation)
    {
        if (shards is < 1 or > ExportRequest.MaxShards)
            throw new MarketRefusedException(StatusCodes.Status400BadRequest, MarketReason.InvalidRequest, $"shards must be between 1 and {ExportRequest.MaxShards}.");
        var phases = metrics.StartExport();
        var account = await accounts.FindAsync(buyerId, cancellation) ?? throw new MarketRefusedException(StatusCodes.Status404NotFound, MarketReason.UnknownBuyer, "The account no longer exists.");
        var grant = GrantedQueries.Usable(account, grantId, accounts.Clock.GetUtcNow());
        var snapshot = await lake.SnapshotAsync(cancellation);
        var table = await queries.TableAsync(grant, snapshot, cancellation);
        long rows;
        using (var sandbox = SqlSandbox.Open([table], GrantedQueries.Limits(options))) rows = sandbox.CountRows(table.Name);
        if (rows > grant.RowsLeft(accounts.Clock.GetUtcNow()))
            throw new MarketRefusedException(StatusCodes.Status403Forbidden, MarketReason.QuotaExhausted,
                $"The grant's slice has {rows} rows and the grant {grant.RowsLeft(accounts.Clock.GetUtcNow())} left; buy a grant with a larger quota.");

        var job = new ExportJob(ApiKeys.NewExportId(), grantId, shards, ExportStatus.Queued, null, 0, 0, null, null, null, accounts.Clock.GetUtcNow());
        Directory.CreateDirectory(FolderOf(job.Id));
        Save(buyerId, job);
        var files = snapshot.Files.Where(f => f.Dataset == grant.Dataset).ToList();
        // The quality report (a scan when the catalog has not seen this checkpoint yet) is computed while the files are written.
        var quality = QualityAsync(grant.Dataset, snapshot);
        var request = new ExportRequest(table, Path.Combine(FolderOf(job.Id), "out"), shards,
            files.Count == 0 ? 0 : files.Min(f => f.FirstSequence), files.Count == 0 ? 0 : files.Max(f => f.LastSequence), snapshot.Checkpoint, quality);
        phases.End("plan");
        _ = Task.Run(() => RunAsync(buyerId, job, grant.Dataset, request, phases), CancellationToken.None);
        return job;
    }

    /// <summary>The job, if it is this buyer's; from disk when the process restarted since.</summary>
    public ExportJob? Find(string buyerId, string id)
    {
        if (_jobs.TryGetValue(id, out var known)) return known.BuyerId == buyerId ? known.Job : null;
        var file = Path.Combine(FolderOf(Path.GetFileName(id)), JobFile);
        if (!File.Exists(file)) return null;
        var stored = JsonSerializer.Deserialize<StoredJob>(File.ReadAllText(file), ExportManifest.Json)!;
        if (stored.BuyerId != buyerId) return null;
        return stored.Job.Status is ExportStatus.Done or ExportStatus.Failed
            ? stored.Job
            : stored.Job with { Status = ExportStatus.Failed, Error = "The marketplace restarted while this export ran; nothing was charged. Start it again." };
    }

    /// <summary>The folder of a finished export's files (manifest, signature, data/), if it is this buyer's.</summary>
    public string? OutputOf(string buyerId, string id) =>
        Find(buyerId, id) is { Status: ExportStatus.Done } job ? Path.Combine(FolderOf(job.Id), "out") : null;

    private sealed record StoredJob(string BuyerId, ExportJob Job);

    /// <summary>The rows of the written files per device and epoch: exactly what the export delivers, for its SalesAttributed.</summary>
    private IReadOnlyList<DeviceShare> SharesOf(ExportResult result, TableShape shape)
    {
        if (result.Manifest.Files.Count == 0) return [];
        var files = string.Join(", ", result.Manifest.Files.Select(f => SqlSandbox.Literal(Path.Combine(result.Folder, f.Path))));
        using var duck = new DuckDBConnection("DataSource=:memory:");
        duck.Open();
        using var command = duck.CreateCommand();
        command.CommandText = $"""
            SELECT {shape.DeviceColumn}, CAST(floor(epoch({shape.TimeColumn}) / {(long)lake.EpochLength.TotalSeconds}) AS BIGINT), count(*)
            FROM read_parquet([{files}], hive_partitioning = false) GROUP BY ALL ORDER BY ALL
            """;
        using var reader = command.ExecuteReader();
        var shares = new List<DeviceShare>();
        while (reader.Read()) shares.Add(new DeviceShare(reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2)));
        return shares;
    }

    private void Save(string buyerId, ExportJob job)
    {
        _jobs[job.Id] = (buyerId, job);
        File.WriteAllText(Path.Combine(FolderOf(job.Id), JobFile), JsonSerializer.Serialize(new StoredJob(buyerId, job), ExportManifest.Json));
    }

    private async Task<JsonElement?> QualityAsync(string dataset, LakeSnapshot snapshot) =>
        await catalog.QualityAtAsync(dataset, snapshot, CancellationToken.None) is { } quality ? JsonSerializer.SerializeToElement(quality, ExportManifest.Json) : null;

    private async Task RunAsync(string buyerId, ExportJob job, string dataset, ExportRequest request, MarketMetrics.Phases phases)
    {
        await _running.WaitAsync();
        try
        {
            phases.End("queue");
            Save(buyerId, job = job with { Status = ExportStatus.Running });
            var progress = new Progress<ExportProgress>(p => Save(buyerId, job = job with { Stage = p.Stage, Done = p.Done, Total = p.Total }));
            var result = await ExportEngine.ExportAsync(request, signer.Key, accounts.Clock, progress, CancellationToken.None, phases);
            var shares = SharesOf(result, request.Table.Shape);
            var chargeId = ApiKeys.NewChargeId();
            var bytes = result.Manifest.Files.Sum(f => f.Bytes);
            await accounts.AppendAsync(buyerId, (account, now) =>
            {
                var grant = GrantedQueries.Usable(account, job.GrantId, now);
                if (grant.RowsLeft(now) < result.Manifest.Rows)
                    throw new MarketRefusedException(StatusCodes.Status409Conflict, MarketReason.QuotaExhausted, "Other requests used the grant's quota while the export ran; nothing was charged.");
                if (grant.BytesLeft(now) < bytes) throw GrantedQueries.ResultPastByteQuota(grant, now, bytes);
                var cost = grant.CreditsFor(now, result.Manifest.Rows, bytes);
                var charged = new ExportCharged(buyerId, job.GrantId, chargeId, job.Id, result.Manifest.Rows, bytes, cost, request.LakeCheckpoint, now);
                return SalesAttribution.Sale(dataset, job.GrantId, chargeId, shares, result.Manifest.Rows, cost) is { } sale ? [charged, sale] : [charged];
            }, CancellationToken.None);
            Save(buyerId, job with { Status = ExportStatus.Done, Rows = result.Manifest.Rows, ChargeId = chargeId });
            phases.End("charge");
        }
        catch (Exception e)
        {
            // A refusal (quota, expiry) is the buyer's to act on and says so in the job; only a defect earns a stack trace.
            if (e is MarketRefusedException) logger.LogInformation("Export {Export} refused: {Reason}", job.Id, e.Message);
            else logger.LogWarning(e, "Export {Export} failed", job.Id);
            if (Directory.Exists(request.Folder)) Directory.Delete(request.Folder, recursive: true);
            Save(buyerId, job with { Status = ExportStatus.Failed, Error = e is MarketRefusedException refused ? refused.Message : "The export could not be written; nothing was charged. Start it again." });
        }
        finally
        {
            _running.Release();
        }
    }
}
