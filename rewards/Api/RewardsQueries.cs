using System.Globalization;
using System.Numerics;
using Marten;
using Microsoft.Extensions.Options;
using Nethereum.Hex.HexConvertors.Extensions;
using Npgsql;
using Pipeline.Core.Crypto;
using Pipeline.Core.Rewards;
using Pipeline.Infra.Postgres;
using Pipeline.Projections.Lake;
using Pipeline.Rewards.Chain;
using Pipeline.Rewards.Stage;

namespace Pipeline.Rewards.Api;

public sealed record ChainView(long ChainId, string Token, string Distributor, string Payments, string Treasury, int Confirmations, string? RpcUrl);

public sealed record EpochView(
    long Epoch, DateTimeOffset Start, DateTimeOffset End, string Status, string? MerkleRoot, string? ContentHash, string? PolicyVersion,
    string? PolicyHash, string? Total, string? Emission, string? Sales, string? Treasury, int? Contributors, int? Devices, string? TxHash, long? Block);

public sealed record ContributorEpochView(long Epoch, string Amount, string Cumulative);

public sealed record ContributorView(string Address, string Cumulative, string Claimed, string Claimable, IReadOnlyList<ContributorEpochView> Epochs);

public sealed record ProofView(long Epoch, string Account, string CumulativeAmount, IReadOnlyList<string> Proof, string MerkleRoot, string Distributor, long ChainId);

public sealed record ScoreComponents(long Completeness, long Uptime, long Timeliness, long Quality, long Agreement, long RejectionPenalty, bool Equivocated);

public sealed record DeviceExplanation(
    string Device, string? Kind, string Score, ScoreComponents Components, long Accepted, long ReadingsCounted, bool VolumeCapped,
    IReadOnlyDictionary<string, long> RejectionsByReason, long SalesRows, long SalesCredits, string EmissionShare, string SalesShare, string Amount);

public sealed record RewardExplanation(long Epoch, string PolicyVersion, string PolicyHash, string Amount, IReadOnlyList<DeviceExplanation> Devices);

/// <summary>The chain, or the event store, cannot answer now.</summary>
public sealed class RewardsUnavailableException(string message, Exception inner) : Exception(message, inner);

/// <summary>What the rewards API answers, from the epochs' documents, their reward files and the distributor on chain.</summary>
public sealed class RewardsQueries(IDocumentStore store, NpgsqlDataSource dataSource, RewardsChain chain, IOptions<RewardsOptions> options, IOptions<LakeOptions> lake, RecordedRewardFiles files, TimeProvider clock)
{
    public async Task<ChainView> ChainAsync(CancellationToken cancellation)
    {
        var context = await ConnectAsync(cancellation);
        var settings = chain.Options;
        return new ChainView(context.ChainId, Lower(context.Token), Lower(context.Distributor), Lower(context.Payments), Lower(context.Treasury), settings.Confirmations,
            settings.Local ? settings.RpcUrl : null);
    }

    /// <summary>Newest first: the epochs not closed yet (open, or final and waiting to be calculated), then the closed ones.</summary>
    public async Task<IReadOnlyList<EpochView>> EpochsAsync(int limit, long? before, CancellationToken cancellation)
    {
        await using var session = store.QuerySession();
        var query = session.Query<RewardEpoch>().AsQueryable();
        if (before is { } last) query = query.Where(e => e.Epoch < last);
        var closed = await query.OrderByDescending(e => e.Epoch).Take(limit).ToListAsync(cancellation);
        var latest = await session.Query<RewardEpoch>().OrderByDescending(e => e.Epoch).FirstOrDefaultAsync(cancellation);
        var length = lake.Value.EpochLength;
        var now = clock.GetUtcNow();
        var current = (long)Math.Floor((now - DateTimeOffset.UnixEpoch) / length);
        var first = latest is null ? current : latest.Epoch + 1;
        var open = new List<EpochView>();
        for (var epoch = Math.Min(current, (before ?? long.MaxValue) - 1); epoch >= first && open.Count < limit; epoch--)
        {
            var start = DateTimeOffset.UnixEpoch + length * epoch;
            var status = now >= start + length + options.Value.Grace ? RewardEpochStatus.Final : RewardEpochStatus.Open;
            open.Add(new EpochView(epoch, start, start + length, status, null, null, null, null, null, null, null, null, null, null, null, null));
        }
        return [.. open.Concat(closed.Select(View)).Take(limit)];
    }

    public async Task<EpochView?> EpochAsync(long epoch, CancellationToken cancellation)
    {
        await using var session = store.QuerySession();
        return await session.LoadAsync<RewardEpoch>(RewardEpoch.StreamId(epoch), cancellation) is { } found ? View(found) : null;
    }

    /// <summary>The calculated epoch's reward file as recorded; null when the epoch is not calculated.</summary>
    public async Task<byte[]?> FileBytesAsync(long epoch, CancellationToken cancellation)
    {
        await using var session = store.QuerySession();
        return await session.LoadAsync<RewardEpoch>(RewardEpoch.StreamId(epoch), cancellation) is { Rewards: not null } found ? await files.ReadBytesAsync(found, cancellation) : null;
    }

    public async Task<ContributorView> ContributorAsync(EthAddress address, CancellationToken cancellation)
    {
        var account = address.ToLowerHex();
        var mine = await ContributorEpochsAsync(account, cancellation);
        var cumulative = mine.Count == 0 ? BigInteger.Zero : BigInteger.Parse(mine[^1].View.Cumulative, CultureInfo.InvariantCulture);
        var published = mine.LastOrDefault(m => m.Status == RewardEpochStatus.Published).View;
        var claimable = published is null ? BigInteger.Zero : BigInteger.Parse(published.Cumulative, CultureInfo.InvariantCulture);
        var context = await ConnectAsync(cancellation);
        BigInteger claimed;
        try
        {
            claimed = await context.Operator.QueryAsync<ClaimedFunction, BigInteger>(context.Distributor, new ClaimedFunction { Account = account });
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            chain.Reset();
            throw new RewardsUnavailableException($"The chain did not answer: {e.Message}", e);
        }
        return new ContributorView(account, S(cumulative), S(claimed), S(BigInteger.Max(BigInteger.Zero, claimable - claimed)), [.. mine.Select(m => m.View)]);
    }

    /// <summary>The proof of the contributor's leaf in the latest published epoch's tree; null when they have none there.</summary>
    public async Task<ProofView?> ProofAsync(EthAddress address, CancellationToken cancellation)
    {
        await using var session = store.QuerySession();
        var latest = await session.Query<RewardEpoch>().Where(e => e.Status == RewardEpochStatus.Published).OrderByDescending(e => e.Epoch).FirstOrDefaultAsync(cancellation);
        if (latest?.Published is not { } published) return null;
        var file = await files.ReadAsync(latest, cancellation);
        var tree = RewardsMerkleTree.Build(file.Rewards.Leaves());
        if (!tree.Contains(address)) return null;
        var leaf = tree.Leaves.First(l => l.Account == address);
        return new ProofView(latest.Epoch, address.ToLowerHex(), S(leaf.CumulativeAmount), [.. tree.GetProof(address).Select(p => p.ToHex(true))],
            published.MerkleRoot, published.Distributor, published.ChainId);
    }

    /// <summary>The contributor's amount in a closed epoch, device by device, from the epoch's reward file; null when the epoch is not closed.</summary>
    public async Task<RewardExplanation?> ExplainAsync(EthAddress address, long epoch, CancellationToken cancellation)
    {
        await using var session = store.QuerySession();
        if (await session.LoadAsync<RewardEpoch>(RewardEpoch.StreamId(epoch), cancellation) is not { Rewards: not null } found) return null;
        var file = await files.ReadAsync(found, cancellation);
        var quality = file.Inputs.Devices.ToDictionary(d => d.Device);
        var devices = file.Rewards.Devices.Where(d => d.Owner == address).Select(d =>
        {
            var row = quality.GetValueOrDefault(d.Device);
            return new DeviceExplanation(d.Device.ToLowerHex(), d.Kind?.ToString().ToLowerInvariant(), S(d.Score),
                new ScoreComponents(d.CompletenessPpm, d.UptimePpm, d.TimelinessPpm, d.QualityPpm, d.AgreementPpm, d.PenaltyPpm, d.Equivocated),
                d.Accepted, d.CappedVolume, d.Accepted > d.CappedVolume, row?.RejectionsByReason ?? new Dictionary<string, long>(),
                d.SoldRows, d.SoldCredits, S(d.EmissionAmount), S(d.SalesAmount), S(d.Amount));
        }).ToList();
        var amount = file.Rewards.Contributors.FirstOrDefault(c => c.Account == address)?.Amount ?? BigInteger.Zero;
        return new RewardExplanation(epoch, file.Policy.Name, file.Rewards.PolicyHash, S(amount), devices);
    }

    /// <summary>
    /// The contributor's line of every calculated epoch, oldest first, picked out in PostgreSQL: an epoch's document holds
    /// every contributor and device, so loading them all to find one account would grow with the network.
    /// </summary>
    private async Task<List<(string Status, ContributorEpochView View)>> ContributorEpochsAsync(string account, CancellationToken cancellation)
    {
        await using var command = dataSource.CreateCommand(ContributorEpochsSql(store.Schema()));
        command.Parameters.Add(new NpgsqlParameter { Value = account });
        await using var reader = await command.ExecuteReaderAsync(cancellation);
        var epochs = new List<(string, ContributorEpochView)>();
        while (await reader.ReadAsync(cancellation))
            epochs.Add((reader.GetString(1), new ContributorEpochView(reader.GetInt64(0), reader.GetString(2), reader.GetString(3))));
        return epochs;
    }

    /// <summary>Epoch, status, amount and cumulative of the account in $1, from the documents' JSON (camelCase, as the store writes it).</summary>
    public static string ContributorEpochsSql(string schema) => $"""
        SELECT (d.data ->> 'epoch')::bigint, d.data ->> 'status', c ->> 'amount', c ->> 'cumulative'
        FROM {schema}.mt_doc_rewardepoch d CROSS JOIN LATERAL jsonb_array_elements(d.data -> 'rewards' -> 'contributors') c
        WHERE d.data @> jsonb_build_object('rewards', jsonb_build_object('contributors', jsonb_build_array(jsonb_build_object('account', $1::text))))
          AND c ->> 'account' = $1
        ORDER BY 1
        """;

    private async Task<ChainContext> ConnectAsync(CancellationToken cancellation)
    {
        try
        {
            return await chain.GetAsync(cancellation);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            chain.Reset();
            throw new RewardsUnavailableException($"The chain at {chain.Options.RpcUrl} is not reachable or its contracts are not known yet: {e.Message}", e);
        }
    }

    private static EpochView View(RewardEpoch e)
    {
        var r = e.Rewards;
        var total = r is null ? null : S(r.Contributors.Aggregate(BigInteger.Zero, (sum, c) => sum + BigInteger.Parse(c.Amount, CultureInfo.InvariantCulture)));
        return new EpochView(e.Epoch, e.Start, e.End, e.Status, r?.MerkleRoot, r?.ContentHash, r?.PolicyName, r?.PolicyHash, total, r?.Emission, r?.SalesShare,
            r?.Treasury, r?.Contributors.Count, r?.Devices.Count, e.Published?.TxHash, e.Published?.Block);
    }

    private static string S(BigInteger value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Lower(string address) => address.ToLowerInvariant();
}
