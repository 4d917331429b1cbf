using System.Globalization;
using System.Numerics;
using DuckDB.NET.Data;
using Marten;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Pipeline.Core.Crypto;
using Pipeline.Core.Events;
using Pipeline.Infra.Hosting;
using Pipeline.Infra.Postgres;
using Pipeline.Projections.Lake;
using Pipeline.Rewards.Epochs;

namespace Pipeline.Rewards.Stage;

/// <summary>A calculated epoch's reward file is missing or differs from its record, and computing it again does not give the recorded one.</summary>
public sealed class RewardFileUnavailableException(long epoch, string contentHash, string message, Exception? inner = null) : Exception(message, inner)
{
    public long Epoch => epoch;

    /// <summary>The content hash recorded for the epoch (and published with its root): the keccak256 the file must have.</summary>
    public string ContentHash => contentHash;
}

/// <summary>
/// The reward files as the epochs' records have them. A file is derived data: the record — the cut in
/// <see cref="EpochClosed"/>, the content hash in <see cref="RewardsCalculated"/> — is what counts. A file that is
/// missing or hashes differently (a crash between recording and writing, a file lost or edited) is computed again from
/// the recorded cut on the live lake and the previous epoch's recorded amounts, and written back only when it hashes to
/// the record; otherwise it is refused, saying which file to restore.
/// </summary>
public sealed class RecordedRewardFiles(
    IDocumentStore store,
    EpochInputsReader inputs,
    IOptions<RewardsOptions> options,
    IOptions<LakeOptions> lakeOptions,
    IOptions<DataOptions> data,
    RewardsMetrics metrics,
    ILogger<RecordedRewardFiles> logger)
{
    public RewardFiles Files => new(options.Value.ResolveDirectory(data.Value.FullPath, store.Schema()));

    public LakeSource LiveLake => new(LakeProjector.LiveLake, lakeOptions.Value.ResolveDirectory(data.Value.FullPath));

    /// <summary>The calculated epoch's file, as recorded; see <see cref="ReadBytesAsync"/>.</summary>
    public async Task<RewardFile> ReadAsync(RewardEpoch epoch, CancellationToken cancellation) =>
        RewardFile.Parse(await ReadBytesAsync(epoch, cancellation));

    /// <summary>
    /// The bytes of the calculated epoch's file, hashing to its recorded content hash: those on disk, or else those
    /// computed again from the record (and written back). Throws <see cref="RewardFileUnavailableException"/> when neither.
    /// </summary>
    public async Task<byte[]> ReadBytesAsync(RewardEpoch epoch, CancellationToken cancellation)
    {
        var recorded = epoch.Rewards ?? throw new ArgumentException($"Epoch {epoch.Epoch} is not calculated: it has no reward file.", nameof(epoch));
        var files = Files;
        var bytes = files.ReadBytes(epoch.Epoch);
        var found = bytes is null ? "missing" : $"hashing to {Hex.Encode0x(Keccak256.Hash(bytes))}";
        if (bytes is not null && Hex.Encode0x(Keccak256.Hash(bytes)) == recorded.ContentHash) return bytes;

        var (closed, file) = await RecomputeAsync(epoch, found, cancellation);
        var again = file.ContentHash();
        if (again != recorded.ContentHash)
        {
            var policy = file.Rewards.PolicyHash == recorded.PolicyHash ? "" : $" (the policy in force hashes to {file.Rewards.PolicyHash}; the epoch was calculated with {recorded.PolicyHash})";
            throw new RewardFileUnavailableException(epoch.Epoch, recorded.ContentHash,
                $"The reward file of epoch {epoch.Epoch} in {files.Directory} is {found}, and computing it again from the recorded cut (through event {closed.ThroughSequence}, sales after event {closed.SalesAfterSequence}) gives {again}, not the recorded content hash {recorded.ContentHash}{policy}. " +
                $"Restore {files.JsonPath(epoch.Epoch)} from a backup: its keccak256 must be {recorded.ContentHash}.");
        }
        files.Write(file);
        metrics.FileRepaired();
        logger.LogWarning("The reward file of epoch {Epoch} in {Directory} was {Found}; computed again from the recorded cut (through event {Through}) it hashes to the recorded content hash {ContentHash} and is written back",
            epoch.Epoch, files.Directory, found, closed.ThroughSequence, recorded.ContentHash);
        return file.ToCanonicalJson();
    }

    /// <summary>The cumulative amounts after an epoch as its record holds them (the same as in its file); none before the first.</summary>
    public static Dictionary<EthAddress, BigInteger> CumulativeAfter(RewardEpoch? epoch) =>
        epoch?.Rewards?.Contributors.ToDictionary(c => EthAddress.Parse(c.Account), c => BigInteger.Parse(c.Cumulative, CultureInfo.InvariantCulture)) ?? [];

    /// <summary>The epoch computed again as its closer did: its recorded cut, the policy in force, the previous epoch's recorded amounts.</summary>
    private async Task<(EpochClosed Closed, RewardFile File)> RecomputeAsync(RewardEpoch epoch, string found, CancellationToken cancellation)
    {
        EpochClosed closed;
        RewardEpoch? previous;
        await using (var session = store.QuerySession())
        {
            var events = await session.Events.FetchStreamAsync(RewardEpoch.StreamId(epoch.Epoch), token: cancellation);
            closed = events.Select(e => e.Data).OfType<EpochClosed>().First();
            previous = await session.Query<RewardEpoch>().Where(e => e.Epoch < epoch.Epoch).OrderByDescending(e => e.Epoch).FirstOrDefaultAsync(cancellation);
        }
        try
        {
            var policy = options.Value.LoadPolicy();
            var read = await inputs.ReadAsync(policy, closed, closed.End - closed.Start, LiveLake, cancellation);
            return (closed, RewardFile.Create(policy, read, CumulativeAfter(previous)));
        }
        catch (Exception e) when (e is IOException or DuckDBException or RewardPolicyException or EpochInputsException)
        {
            throw new RewardFileUnavailableException(epoch.Epoch, epoch.Rewards!.ContentHash,
                $"The reward file of epoch {epoch.Epoch} in {Files.Directory} is {found}, and it cannot be computed again from the recorded cut (through event {closed.ThroughSequence}): {e.Message} " +
                $"Restore {Files.JsonPath(epoch.Epoch)} from a backup: its keccak256 must be {epoch.Rewards.ContentHash}.", e);
        }
    }
}
