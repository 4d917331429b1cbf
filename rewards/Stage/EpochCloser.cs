using System.Globalization;
using System.Numerics;
using Marten;
using Marten.Exceptions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Pipeline.Core.Crypto;
using Pipeline.Core.Events;
using Pipeline.Infra.Postgres;
using Pipeline.Projections.Lake;
using Pipeline.Rewards.Epochs;

namespace Pipeline.Rewards.Stage;

/// <summary>
/// Closes epochs in order, each once its data is final: the clock has passed its end plus the grace, and the lake has
/// projected every event recorded by then. It computes the epoch from that cut, appends <see cref="EpochClosed"/> and
/// <see cref="RewardsCalculated"/> as a new stream — which a second closer cannot start again — and only then writes
/// the reward file, so a closer that lost the race writes nothing.
/// </summary>
public sealed class EpochCloser(
    IDocumentStore store,
    NpgsqlDataSource dataSource,
    LakeStore lake,
    EpochInputsReader inputs,
    RecordedRewardFiles files,
    IOptions<RewardsOptions> options,
    IOptions<LakeOptions> lakeOptions,
    TimeProvider clock,
    RewardsMetrics metrics,
    ILogger<EpochCloser> logger)
{
    // The event sequence seen when an epoch first became final: its data is read as of then, however long the lake takes.
    private readonly Dictionary<long, long> _targets = [];

    public TimeSpan EpochLength => lakeOptions.Value.EpochLength;

    public DateTimeOffset StartOf(long epoch) => DateTimeOffset.UnixEpoch + EpochLength * epoch;

    /// <summary>The epoch holding <paramref name="time"/>.</summary>
    public long EpochAt(DateTimeOffset time) => (long)Math.Floor((time - DateTimeOffset.UnixEpoch) / EpochLength);

    /// <summary>Closes the next epoch if it is final; false when there is nothing to close yet.</summary>
    public async Task<bool> CloseNextAsync(CancellationToken cancellation)
    {
        if (await CutNextAsync(cancellation) is not { } cut) return false;
        await RecordAsync(cut, cancellation);
        return true;
    }

    /// <summary>The next epoch computed from its cut once it is final; null when there is nothing to close yet. Nothing is recorded or written.</summary>
    public async Task<EpochCut?> CutNextAsync(CancellationToken cancellation)
    {
        RewardEpoch? last;
        await using (var session = store.QuerySession())
            last = await session.Query<RewardEpoch>().OrderByDescending(e => e.Epoch).FirstOrDefaultAsync(cancellation);
        var next = last?.Epoch + 1 ?? options.Value.FirstEpoch ?? await EarliestEpochInLakeAsync(cancellation);
        if (next is not { } epoch) return null;

        var end = StartOf(epoch + 1);
        var now = clock.GetUtcNow();
        if (now < end + options.Value.Grace) return null;
        if (!_targets.TryGetValue(epoch, out var through)) _targets[epoch] = through = await LastEventSequenceAsync(cancellation);
        if (await lake.Manifest(LakeProjector.LiveLake).CheckpointAsync(cancellation) < through) return null;

        var closed = new EpochClosed(epoch, StartOf(epoch), end, through, last?.ThroughSequence ?? 0, now);
        var policy = options.Value.LoadPolicy();
        var read = await inputs.ReadAsync(policy, closed, EpochLength, files.LiveLake, cancellation);
        return new EpochCut(closed, RewardFile.Create(policy, read, await PreviousCumulativeAsync(last, cancellation)));
    }

    /// <summary>Records the cut as the epoch's stream, then writes its file; false (and nothing written) when another closer recorded the epoch first.</summary>
    public async Task<bool> RecordAsync(EpochCut cut, CancellationToken cancellation)
    {
        var (closed, file) = cut;
        var epoch = closed.Epoch;
        var calculated = Calculated(file, Path.GetFileName(files.Files.JsonPath(epoch)), clock.GetUtcNow());

        await using (var session = store.LightweightSession())
        {
            session.Events.StartStream<RewardEpoch>(RewardEpoch.StreamId(epoch), closed, calculated);
            try
            {
                await session.SaveChangesAsync(cancellation);
            }
            catch (ExistingStreamIdCollisionException)
            {
                logger.LogWarning("Epoch {Epoch} was closed by another process meanwhile; this process's cut through event {Through} is dropped and its file not written", epoch, closed.ThroughSequence);
                _targets.Remove(epoch);
                return false;
            }
        }
        _targets.Remove(epoch);
        // Written once recorded: a crash before this leaves no file, which the next read computes again from the record.
        files.Files.Write(file);
        metrics.Closed();
        logger.LogInformation("Epoch {Epoch} closed through event {Through}: {Devices} devices, {Contributors} contributors, root {Root}, content hash {ContentHash}, policy {Policy} {PolicyHash}",
            epoch, closed.ThroughSequence, file.Rewards.Devices.Count, file.Rewards.Contributors.Count, file.MerkleRoot ?? "none", calculated.ContentHash, file.Policy.Name, file.Rewards.PolicyHash);
        return true;
    }

    /// <summary>The cumulative amounts after the previous epoch, from its reward file (the record anyone can check), repaired from its record when it differs.</summary>
    private async Task<Dictionary<EthAddress, BigInteger>> PreviousCumulativeAsync(RewardEpoch? last, CancellationToken cancellation)
    {
        if (last is null) return [];
        var file = await files.ReadAsync(last, cancellation);
        return file.Rewards.Contributors.ToDictionary(c => c.Account, c => c.CumulativeAmount);
    }

    public static RewardsCalculated Calculated(RewardFile file, string fileName, DateTimeOffset at)
    {
        var rewards = file.Rewards;
        static string S(BigInteger value) => value.ToString(CultureInfo.InvariantCulture);
        return new RewardsCalculated(
            rewards.Epoch,
            file.Policy.Name,
            rewards.PolicyHash,
            rewards.InputsHash,
            file.MerkleRoot,
            file.ContentHash(),
            fileName,
            S(rewards.Emission),
            S(rewards.SalesShare),
            S(rewards.Treasury),
            S(rewards.Contributors.Aggregate(BigInteger.Zero, (sum, c) => sum + c.CumulativeAmount)),
            rewards.Contributors.Select(c => new ContributorEpochAmount(c.Account.ToLowerHex(), S(c.Amount), S(c.CumulativeAmount))).ToList(),
            rewards.Devices.Select(d => new DeviceEpochAmount(d.Device.ToLowerHex(), d.Owner.ToLowerHex(), S(d.Score), S(d.EmissionAmount), S(d.SalesAmount))).ToList(),
            at);
    }

    private async Task<long?> EarliestEpochInLakeAsync(CancellationToken cancellation)
    {
        var lakeFiles = await lake.Manifest(LakeProjector.LiveLake).FilesAsync(cancellation);
        if (lakeFiles.Count == 0) return null;
        using var duck = LakeCatalog.Open(files.LiveLake.Directory, lakeFiles, EpochLength);
        using var command = duck.CreateCommand();
        command.CommandText = $"SELECT min(epoch) FROM {LakeCatalog.DeviceQuality}";
        var value = command.ExecuteScalar();
        return value is null or DBNull ? null : Convert.ToInt64(value, CultureInfo.InvariantCulture);
    }

    private async Task<long> LastEventSequenceAsync(CancellationToken cancellation)
    {
        await using var command = dataSource.CreateCommand($"SELECT coalesce(max(seq_id), 0) FROM {store.Schema()}.mt_events");
        return (long)(await command.ExecuteScalarAsync(cancellation))!;
    }
}

/// <summary>An epoch computed from one cut of the event store (<see cref="EpochClosed.ThroughSequence"/>), not recorded yet.</summary>
public sealed record EpochCut(EpochClosed Closed, RewardFile File);
