using Marten;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Pipeline.Infra.Postgres;

namespace Pipeline.Rewards.Stage;

/// <summary>
/// The rewards stage: one leader per event store (an advisory lock) closes every final epoch, then publishes the roots
/// waiting for the chain, every poll. Others wait; a new leader picks up where the old one stopped, from the events.
/// </summary>
public sealed class RewardsStage(
    IDocumentStore store,
    LeaderElection leaders,
    EpochCloser closer,
    RootPublisher publisher,
    IOptions<RewardsOptions> options,
    ILogger<RewardsStage> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var poll = options.Value.PollInterval;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var leadership = await leaders.TryLeadAsync($"depin:rewards:{store.Schema()}", stoppingToken);
                if (leadership is null)
                {
                    await Task.Delay(poll, stoppingToken);
                    continue;
                }
                logger.LogInformation("Leading the rewards stage: closing epochs of {EpochLength} and publishing their roots", closer.EpochLength);
                while (!stoppingToken.IsCancellationRequested && leadership.State == System.Data.ConnectionState.Open)
                {
                    while (await closer.CloseNextAsync(stoppingToken)) { }
                    await publisher.PublishPendingAsync(stoppingToken);
                    await Task.Delay(poll, stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException)
            {
                logger.LogWarning("The rewards stage stopped: {Message}; starting over", e.Message);
                await Task.Delay(poll, stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // An epoch that cannot be closed (a missing reward file, inputs the calculation refuses) must not take the
                // rest of the pipeline down with it: it is logged and tried again, and nothing is recorded for it meanwhile.
                logger.LogError(e, "The rewards stage failed: {Message}; trying again", e.Message);
                await Task.Delay(poll * 10, stoppingToken);
            }
        }
    }
}
