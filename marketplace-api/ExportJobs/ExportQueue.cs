using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using DuckDB.NET.Data;
using Npgsql;
using Pipeline.Core.Events;
using Pipeline.Marketplace.Accounts;
using Pipeline.Marketplace.Attribution;
using Pipeline.Marketplace.Catalog;
using Pipeline.Marketplace.Exports;
using Pipeline.Marketplace.Query;

namespace Pipeline.Marketplace.ExportJobs;

public enum ExportStatus { Queued, Running, Done, Failed }

/// <summary>An export job as the buyer sees it.</summary>
public sealed record ExportJob(string Id, string GrantId, int Shards, ExportStatus Status, ExportStage? Stage, int Done, int Total, long? Rows, string? ChargeId, string? Error, DateTimeOffset CreatedAt);

/// <summary>
/// Export jobs: a grant's slice written by the engine (hive-partitioned Parquet, optional shards, a signed manifest)
/// into a folder of its own under the export folder, a few at a time in the background. The rows are charged once the
/// files are written and before anything can be downloaded; if the quota was used meanwhile, the files are deleted
/// and the job fails saying so. A job's state is a row in PostgreSQL (<see cref="ExportJobStore"/>), so any replica
/// answers its progress and serves its files from the shared export folder. The replica that runs a job writes its
/// progress with a heartbeat twice a second; a job whose replica fell silent for <see cref="MarketplaceOptions.ExportHeartbeatTimeout"/>
/// is failed by the next replica asked about it, and its files deleted. A replica that shuts down fails its jobs itself.
/// </summary>
public sealed class ExportQueue(MarketAccounts accounts, MarketLake lake, GrantedQueries queries, DatasetCatalog catalog, MarketSigner signer, MarketMetrics metrics,
    ExportJobStore store, IOptions<MarketplaceOptions> settings, string folder, ILogger<ExportQueue> logger) : BackgroundService
{
    public static readonly TimeSpan HeartbeatInterval = TimeSpan.FromMilliseconds(500);
    public static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(60);
    private const string OutputFolder = "out";
    private readonly ConcurrentDictionary<string, RunningJob> _jobs = new();
    private readonly SemaphoreSlim _running = new(2, 2);
    private volatile bool _stopping;
    private Task<DuckDBConnection>? _blank;

    /// <summary>This process, as the jobs it runs name it (the host, the process and a random part, since a restarted pod keeps its name).</summary>
    public string Runner { get; } = $"{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid().ToString("n")[..8]}";

    public string FolderOf(string id) => Path.Combine(folder, Path.GetFileName(id));

    public async Task<ExportJob> StartAsync(string buyerId, string grantId, int shards, CancellationToken cancellation)
    {
        if (shards is < 1 or > ExportRequest.MaxShards)
            throw new MarketRefusedException(StatusCodes.Status400BadRequest, MarketReason.InvalidRequest, $"shards must be between 1 and {ExportRequest.MaxShards}.");
        var phases = metrics.StartExport();
        var account = await accounts.FindAsync(buyerId, cancellation) ?? throw new MarketRefusedException(StatusCodes.Status404NotFound, MarketReason.UnknownBuyer, "The account no longer exists.");
        var grant = GrantedQueries.Usable(account, grantId, accounts.Clock.GetUtcNow());
        var snapshot = await lake.SnapshotAsync(cancellation);
        var table = await queries.TableAsync(grant, snapshot, cancellation);
        var files = snapshot.Files.Where(f => f.Dataset == grant.Dataset).ToList();
        // With a slot free the job is inserted running, and starts without another round trip to move it there.
        var slot = _running.Wait(0);
        var job = new ExportJob(ApiKeys.NewExportId(), grantId, shards, slot ? ExportStatus.Running : ExportStatus.Queued, null, 0, 0, null, null, null, accounts.Clock.GetUtcNow());
        // The quality report (a scan when the catalog has not seen this checkpoint yet) is computed while the export is
        // planned and written; the catalog keeps it per checkpoint, so a refused export leaves it for the next.
        var quality = QualityAsync(grant.Dataset, snapshot, metrics.StartExport());
        var request = new ExportRequest(table, Path.Combine(FolderOf(job.Id), OutputFolder), shards,
            files.Count == 0 ? 0 : files.Min(f => f.FirstSequence), files.Count == 0 ? 0 : files.Max(f => f.LastSequence), snapshot.Checkpoint, quality);
        // The export's DuckDB opens (settings, view, schema) while the job's row is written, from the blank database made
        // ahead at the previous export; the next export's is made now, off its path.
        var blank = Interlocked.Exchange(ref _blank, Task.Run(NewDuckDb, CancellationToken.None));
        var opening = Task.Run(async () => ExportEngine.Open(request, blank is null ? null : await blank), CancellationToken.None);
        try
        {
            // The slice has at most its files' rows (the lake's manifest counts them); only a grant with fewer rows left
            // than that needs the slice counted (a scan) to know whether to refuse. The charge checks the rows written.
            var rowsLeft = grant.RowsLeft(accounts.Clock.GetUtcNow());
            if (files.Sum(f => (long)f.Rows) > rowsLeft && (await opening).CountRows() is var rows && rows > rowsLeft)
                throw new MarketRefusedException(StatusCodes.Status403Forbidden, MarketReason.QuotaExhausted,
                    $"The grant's slice has {rows} rows and the grant {rowsLeft} left; buy a grant with a larger quota.");
            await store.InsertAsync(buyerId, job, Runner, cancellation);
        }
        catch
        {
            if (slot) _running.Release();
            _ = opening.ContinueWith(o => o.Result.Dispose(), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
            throw;
        }
        // The export delivers exactly the slice's rows (the COPY writes this view over these files), so they are
        // attributed from the slice's rows per device and epoch, counted on the export's DuckDB beside the write.
        var running = new RunningJob(job.Id);
        var shares = Task.Run(async () => (await opening).CountShares(lake.EpochLength, running.Cancellation.Token), CancellationToken.None);
        Directory.CreateDirectory(FolderOf(job.Id));
        _jobs[job.Id] = running;
        phases.End("plan");
        running.Task = Task.Run(() => RunAsync(buyerId, job, running, slot, grant.Dataset, opening, shares, phases), CancellationToken.None);
        return job;
    }

    /// <summary>
    /// The job, if it is this buyer's, whichever replica runs it: as it is now, or, with <paramref name="wait"/>, once it
    /// is done or failed if that comes sooner. A job this replica runs is answered at its end; one that another replica
    /// runs is read again at every heartbeat. Waiting spares a client the polls — each a request and a round trip to
    /// PostgreSQL, taken from the export's CPU on a small machine.
    /// </summary>
    public async Task<ExportJob?> FindAsync(string buyerId, string id, CancellationToken cancellation, TimeSpan wait = default)
    {
        var deadline = accounts.Clock.GetUtcNow() + wait;
        while (true)
        {
            var (job, takenOver) = await store.FindAsync(buyerId, id, settings.Value.ExportHeartbeatTimeout, cancellation);
            if (takenOver)
            {
                logger.LogWarning("Export {Export} failed: {Reason}", id, job!.Error);
                DeleteFolder(id);
            }
            var left = deadline - accounts.Clock.GetUtcNow();
            if (job is not { Status: ExportStatus.Queued or ExportStatus.Running } || left <= TimeSpan.Zero) return job;
            var end = _jobs.TryGetValue(id, out var running) ? running.Task : Task.Delay(HeartbeatInterval, accounts.Clock, cancellation);
            await end.WaitAsync(left, accounts.Clock, cancellation).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            cancellation.ThrowIfCancellationRequested();
        }
    }

    /// <summary>The folder of a finished export's files (manifest, signature, data/), if it is this buyer's and done.</summary>
    public async Task<string?> OutputOfAsync(string buyerId, string id, CancellationToken cancellation) =>
        await FindAsync(buyerId, id, cancellation) is { Status: ExportStatus.Done } job ? Path.Combine(FolderOf(job.Id), OutputFolder) : null;

    /// <summary>Beats for the jobs this replica runs, with their progress; a job another replica failed meanwhile is stopped here.</summary>
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(HeartbeatInterval);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            if (_jobs.IsEmpty) continue;
            try
            {
                var jobs = _jobs.Values.Select(j => (j.Id, j.Progress)).ToList();
                foreach (var id in await store.HeartbeatAsync(Runner, jobs, stoppingToken))
                    if (_jobs.TryGetValue(id, out var lost)) await lost.Cancellation.CancelAsync();
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                // A missed beat or two is what the timeout allows for; the next tick tries again.
                logger.LogWarning("Export heartbeat failed: {Error}", e.Message);
            }
        }
    }

    /// <summary>Stops this replica's jobs and fails them saying so, rather than leaving them to time out.</summary>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        _stopping = true;
        foreach (var job in _jobs.Values) await job.Cancellation.CancelAsync();
        await Task.WhenAll(_jobs.Values.Select(j => j.Task)).WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await base.StopAsync(cancellationToken);
    }

    /// <summary>A job this replica runs: its latest progress (written by the heartbeat) and what stops it.</summary>
    private sealed class RunningJob(string id) : IProgress<ExportProgress>
    {
        public string Id => id;
        public CancellationTokenSource Cancellation { get; } = new();
        public Task Task { get; set; } = Task.CompletedTask;
        public ExportProgress? Progress { get; private set; }
        public void Report(ExportProgress value) => Progress = value;
    }

    /// <summary>The manifest's quality report; its time (beside the job's phases, not one of them) is recorded as the phase <c>quality</c>.</summary>
    private async Task<JsonElement?> QualityAsync(string dataset, LakeSnapshot snapshot, MarketMetrics.Phases phases)
    {
        var quality = await catalog.QualityAtAsync(dataset, snapshot, CancellationToken.None);
        phases.End("quality");
        return quality is null ? null : JsonSerializer.SerializeToElement(quality, ExportManifest.Json);
    }

    private async Task RunAsync(string buyerId, ExportJob job, RunningJob running, bool slot, string dataset, Task<OpenExport> opening, Task<IReadOnlyList<DeviceShare>> slice, MarketMetrics.Phases phases)
    {
        var cancellation = running.Cancellation.Token;
        var started = slot;
        try
        {
            if (!slot)
            {
                await _running.WaitAsync(cancellation);
                started = true;
                if (!await store.StartAsync(job.Id, Runner, cancellation)) throw new OperationCanceledException(cancellation);
                phases.End("queue");
            }
            var export = await opening;
            phases.End("open");
            var result = await ExportEngine.ExportAsync(export, signer.Key, accounts.Clock, running, cancellation, phases);
            var shares = await slice.WaitAsync(cancellation);
            if (shares.Sum(s => s.Rows) != result.Manifest.Rows)
                throw new InvalidOperationException($"The slice counted {shares.Sum(s => s.Rows)} rows per device and epoch, the files hold {result.Manifest.Rows}.");
            phases.End("attribute");
            var chargeId = ApiKeys.NewChargeId();
            var bytes = result.Manifest.Files.Sum(f => f.Bytes);
            await accounts.AppendAsync(buyerId, (account, now) =>
            {
                var grant = GrantedQueries.Usable(account, job.GrantId, now);
                if (grant.RowsLeft(now) < result.Manifest.Rows)
                    throw new MarketRefusedException(StatusCodes.Status409Conflict, MarketReason.QuotaExhausted, "Other requests used the grant's quota while the export ran; nothing was charged.");
                if (grant.BytesLeft(now) < bytes) throw GrantedQueries.ResultPastByteQuota(grant, now, bytes);
                var cost = grant.CreditsFor(now, result.Manifest.Rows, bytes);
                var charged = new ExportCharged(buyerId, job.GrantId, chargeId, job.Id, result.Manifest.Rows, bytes, cost, result.Manifest.LakeCheckpoint, now);
                return SalesAttribution.Sale(dataset, job.GrantId, chargeId, shares, result.Manifest.Rows, cost) is { } sale ? [charged, sale] : [charged];
            }, cancellation, alongside: session => store.FinishWithCharge(session, job.Id, Runner, result.Manifest.Rows, chargeId));
            phases.End("charge");
        }
        catch (Exception e)
        {
            // The count beside the COPY scans the whole slice: a job that ends here stops it rather than wait for it.
            await running.Cancellation.CancelAsync();
            DeleteFolder(job.Id);
            if (ExportJobStore.IsTakenOver(e) || (e is OperationCanceledException && !_stopping))
            {
                // Another replica found this one silent and failed the job (its row says why); nothing was charged here.
                logger.LogWarning("Export {Export} was failed by another replica while it ran here; stopped without a charge", job.Id);
                return;
            }
            // A refusal (quota, expiry) is the buyer's to act on and says so in the job; only a defect earns a stack trace.
            if (e is MarketRefusedException) logger.LogInformation("Export {Export} refused: {Reason}", job.Id, e.Message);
            else if (e is not OperationCanceledException) logger.LogWarning(e, "Export {Export} failed", job.Id);
            var error = e switch
            {
                MarketRefusedException refused => refused.Message,
                OperationCanceledException => "The API replica running this export shut down; nothing was charged. Start it again.",
                _ => "The export could not be written; nothing was charged. Start it again.",
            };
            await store.FailAsync(job.Id, Runner, error, CancellationToken.None);
        }
        finally
        {
            // The export's DuckDB is closed once the COPY and the count beside it are over, whatever happened; in the
            // background, since closing frees what the COPY used (~30 ms) and a status request waits for this task.
            await Task.WhenAll(opening, slice).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (opening.IsCompletedSuccessfully) _ = Task.Run(opening.Result.Dispose, CancellationToken.None);
            if (started) _running.Release();
            _jobs.TryRemove(job.Id, out _);
        }
    }

    private static DuckDBConnection NewDuckDb()
    {
        var duck = new DuckDBConnection("DataSource=:memory:");
        duck.Open();
        return duck;
    }

    public override void Dispose()
    {
        if (_blank is { IsCompletedSuccessfully: true } blank) blank.Result.Dispose();
        base.Dispose();
    }

    private void DeleteFolder(string id)
    {
        try
        {
            if (Directory.Exists(FolderOf(id))) Directory.Delete(FolderOf(id), recursive: true);
        }
        catch (IOException e)
        {
            logger.LogWarning("The files of failed export {Export} could not be deleted: {Error}", id, e.Message);
        }
    }
}
