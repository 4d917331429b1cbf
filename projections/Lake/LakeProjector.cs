using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Pipeline.Infra.Hosting;

namespace Pipeline.Projections.Lake;

/// <summary>
/// Keeps the lake current: one projector at a time leads (a PostgreSQL advisory lock per lake, through <see cref="Pipeline.Infra.Postgres.LeaderElection"/>), recovers what a
/// predecessor left, then projects new events every poll and compacts small files now and then. The checkpoint lives in
/// the manifest, fenced, so several hosts never project the same range twice.
/// </summary>
public sealed class LakeProjector(LakeStore store, IOptions<DataOptions> data, IOptions<LakeOptions> options, LakeMetrics metrics, ILogger<LakeProjector> logger) : BackgroundService
{
    public const string LiveLake = "main";

    private readonly LakeOptions _options = options.Value;
    private readonly LakeManifest _manifest = store.Manifest(LiveLake);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await _manifest.EnsureSchemaAsync(stoppingToken);
        var directory = _options.ResolveDirectory(data.Value.FullPath);
        var writer = new LakeWriter(store, _manifest, directory, _options, metrics, logger);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var leadership = await store.TryLeadAsync(LiveLake, stoppingToken);
                if (leadership is null)
                {
                    await Task.Delay(TimeSpan.FromSeconds(2), stoppingToken);
                    continue;
                }
                logger.LogInformation("Projecting the lake in {Directory}", directory);
                await writer.RecoverAsync(stoppingToken);
                using var leading = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                // Compaction runs beside the rounds, one at a time: merging a day's files takes seconds that the
                // freshness of every reading would otherwise wait for, once every CompactionInterval.
                var compaction = Task.CompletedTask;
                try
                {
                    while (!stoppingToken.IsCancellationRequested && leadership.State == System.Data.ConnectionState.Open)
                    {
                        var round = System.Diagnostics.Stopwatch.StartNew();
                        var projected = await writer.ProjectAsync(until: null, stoppingToken);
                        if (compaction.IsCompleted)
                        {
                            await compaction; // its failure ends this leadership as a round's would
                            compaction = Task.Run(() => writer.CompactAsync(force: false, leading.Token), leading.Token);
                        }
                        // A round that was not full has caught up: the next starts a poll interval after this one began.
                        // Back to back at a live rate, each round wrote a small file and paid its fixed work (a writer, an
                        // fsync, a manifest transaction) for a few hundred rows (issue 16).
                        var rest = _options.PollInterval - round.Elapsed;
                        if (projected < _options.MaxEventsPerRound && rest > TimeSpan.Zero) await Task.Delay(rest, stoppingToken);
                    }
                }
                finally
                {
                    // Never two at once, nor one beside a new leadership's recovery (which empties the staging folder).
                    await leading.CancelAsync();
                    await compaction.ContinueWith(t => t.Exception, TaskScheduler.Default);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException or LakeTakenOverException)
            {
                logger.LogWarning("Projecting the lake stopped: {Message}; starting over", e.Message);
                await Task.Delay(TimeSpan.FromSeconds(2), stoppingToken);
            }
        }
    }
}
