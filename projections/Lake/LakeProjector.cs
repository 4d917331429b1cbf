using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Pipeline.Infra.Stack;

namespace Pipeline.Projections.Lake;

/// <summary>
/// Keeps the lake current: one projector at a time leads (a PostgreSQL advisory lock per lake), recovers what a
/// predecessor left, then projects new events every poll and compacts small files now and then. The checkpoint lives in
/// the manifest, fenced, so several hosts never project the same range twice.
/// </summary>
public sealed class LakeProjector(DevStack stack, IOptions<LakeOptions> options, LakeMetrics metrics, ILogger<LakeProjector> logger) : BackgroundService
{
    public const string LiveLake = "main";

    private readonly LakeOptions _options = options.Value;
    private readonly LakeManifest _manifest = new(stack, LiveLake);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await _manifest.EnsureSchemaAsync(stoppingToken);
        var directory = _options.ResolveDirectory(stack.DataDirectory);
        var writer = new LakeWriter(stack, _manifest, directory, _options, metrics, logger);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var leadership = await _manifest.OpenAsync(stoppingToken);
                if (!await LeadAsync(leadership, LiveLake, stoppingToken))
                {
                    await Task.Delay(TimeSpan.FromSeconds(2), stoppingToken);
                    continue;
                }
                logger.LogInformation("Projecting the lake in {Directory}", directory);
                await writer.RecoverAsync(stoppingToken);
                while (!stoppingToken.IsCancellationRequested && leadership.State == System.Data.ConnectionState.Open)
                {
                    var projected = await writer.ProjectAsync(until: null, stoppingToken);
                    await writer.CompactAsync(force: false, stoppingToken);
                    if (projected == 0) await Task.Delay(_options.PollInterval, stoppingToken);
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

    /// <summary>Takes the lake's advisory lock on this connection; held until the connection closes.</summary>
    public static async Task<bool> LeadAsync(NpgsqlConnection connection, string lake, CancellationToken cancellation)
    {
        await using var command = new NpgsqlCommand("SELECT pg_try_advisory_lock(hashtextextended('depin:lake:' || $1, 0))", connection) { Parameters = { new() { Value = lake } } };
        return (bool)(await command.ExecuteScalarAsync(cancellation))!;
    }
}
