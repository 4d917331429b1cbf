using System.Numerics;
using Marten;
using Microsoft.Extensions.Logging;
using Nethereum.Hex.HexConvertors.Extensions;
using Nethereum.RPC.Eth.DTOs;
using Pipeline.Core.Events;
using Pipeline.Rewards.Chain;

namespace Pipeline.Rewards.Stage;

/// <summary>
/// Puts each calculated epoch's root on chain exactly once, whatever crashes or node restarts happen in between: it
/// records the intent (<see cref="RootPublishRequested"/>), asks the distributor for the epoch's root before every
/// send, and records <see cref="RootPublished"/> only from the chain's own RootPublished log once it is confirmed. The
/// distributor refuses a second root for an epoch, so a send that raced another one reverts and changes nothing.
/// </summary>
public sealed class RootPublisher(IDocumentStore store, RewardsChain chain, RecordedRewardFiles files, TimeProvider clock, RewardsMetrics metrics, ILogger<RootPublisher> logger)
{
    /// <summary>Works through the epochs waiting for their root, oldest first; stops at the first that cannot go on yet.</summary>
    public async Task PublishPendingAsync(CancellationToken cancellation)
    {
        List<RewardEpoch> pending;
        await using (var session = store.QuerySession())
            pending = [.. await session.Query<RewardEpoch>()
                .Where(e => e.Status == RewardEpochStatus.Calculated || e.Status == RewardEpochStatus.Publishing)
                .OrderBy(e => e.Epoch)
                .ToListAsync(cancellation)];
        foreach (var epoch in pending)
        {
            if (epoch.Rewards?.MerkleRoot is null) continue;
            // Anyone can fetch the file the root's content hash names: it is there, as recorded, before the root goes out.
            if (epoch.Requested is null) await files.ReadBytesAsync(epoch, cancellation);
            try
            {
                if (!await PublishAsync(epoch, cancellation)) return;
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellation.IsCancellationRequested)
            {
                // A node that went away, a transaction not mined in time: start over from what the chain says.
                chain.Reset();
                logger.LogWarning("Publishing the root of epoch {Epoch} did not finish: {Message}; the chain is asked again in the next round", epoch.Epoch, e.Message);
                return;
            }
        }
    }

    /// <summary>True once the epoch's root is recorded as published; false while it waits for confirmations or cannot go on.</summary>
    private async Task<bool> PublishAsync(RewardEpoch epoch, CancellationToken cancellation)
    {
        var rewards = epoch.Rewards!;
        var root = rewards.MerkleRoot!.HexToByteArray();
        var context = await chain.GetAsync(cancellation);
        var onChain = await RootOnChainAsync(context, epoch.Epoch);
        if (onChain is null)
        {
            var next = await context.Operator.QueryAsync<NextEpochFunction, ulong>(context.Distributor, new NextEpochFunction());
            if ((ulong)epoch.Epoch < next)
            {
                logger.LogError("Epoch {Epoch} cannot be published: the distributor {Distributor} already holds epoch {Latest}, and epochs only go up. Was a root published by hand?",
                    epoch.Epoch, context.Distributor, next - 1);
                return false;
            }
            if (await HasPendingTransactionAsync(context))
            {
                // An earlier send (this process's, or one before a restart) is still in the node's pool: it may yet be
                // mined, and a second one would only revert. Wait for it, then look at the chain again.
                logger.LogInformation("Epoch {Epoch}: the operator {Operator} has a transaction waiting to be mined; waiting for it before sending", epoch.Epoch, context.Operator.Address);
                return false;
            }
            if (epoch.Requested is null)
                await AppendAsync(epoch, new RootPublishRequested(epoch.Epoch, rewards.MerkleRoot!, rewards.ContentHash, rewards.TotalOwed, context.ChainId, context.Distributor.ToLowerInvariant(), clock.GetUtcNow()), cancellation);
            try
            {
                await context.Operator.SendAsync(context.Distributor, new PublishRootFunction
                {
                    Epoch = (ulong)epoch.Epoch,
                    Root = root,
                    ContentHash = rewards.ContentHash.HexToByteArray(),
                    TotalOwed = BigInteger.Parse(rewards.TotalOwed),
                }, cancellation);
            }
            catch (ContractRevertedException e) when (e.Error == "EpochAlreadyPublished")
            {
                logger.LogInformation("Epoch {Epoch}'s root was already on chain when the transaction ran (an earlier send was mined)", epoch.Epoch);
            }
            onChain = await RootOnChainAsync(context, epoch.Epoch);
            if (onChain is null) return false;
        }
        if (!onChain.AsSpan().SequenceEqual(root))
        {
            logger.LogCritical("Epoch {Epoch} holds root {OnChain} on chain, not the calculated {Root}: the reward files and the chain disagree; nothing more is published until an operator looks",
                epoch.Epoch, onChain.ToHex(true), rewards.MerkleRoot);
            return false;
        }

        var (transaction, block) = await RootPublishedLogAsync(context, epoch.Epoch, cancellation);
        var head = (long)(await context.Operator.Web3.Eth.Blocks.GetBlockNumber.SendRequestAsync()).Value;
        if (head - block + 1 < chain.Options.Confirmations) return false;
        var now = clock.GetUtcNow();
        await AppendAsync(epoch, new RootPublished(epoch.Epoch, rewards.MerkleRoot!, rewards.ContentHash, context.ChainId, context.Distributor.ToLowerInvariant(), transaction, block, now), cancellation);
        metrics.Published(epoch.Epoch, now - rewards.CalculatedAt);
        logger.LogInformation("Epoch {Epoch}'s root {Root} is published in transaction {TxHash} (block {Block})", epoch.Epoch, rewards.MerkleRoot, transaction, block);
        return true;
    }

    private static async Task<bool> HasPendingTransactionAsync(ChainContext context)
    {
        var transactions = context.Operator.Web3.Eth.Transactions.GetTransactionCount;
        var mined = await transactions.SendRequestAsync(context.Operator.Address, BlockParameter.CreateLatest());
        var pending = await transactions.SendRequestAsync(context.Operator.Address, BlockParameter.CreatePending());
        return pending.Value > mined.Value;
    }

    /// <summary>The distributor's root for the epoch, or null when it has none.</summary>
    private static async Task<byte[]?> RootOnChainAsync(ChainContext context, long epoch)
    {
        var root = await context.Operator.QueryAsync<RootOfFunction, byte[]>(context.Distributor, new RootOfFunction { Epoch = (ulong)epoch });
        return root.All(b => b == 0) ? null : root;
    }

    /// <summary>Where the distributor's RootPublished log for the epoch is: the one transaction that published it.</summary>
    private static async Task<(string TransactionHash, long Block)> RootPublishedLogAsync(ChainContext context, long epoch, CancellationToken cancellation)
    {
        var published = context.Operator.Web3.Eth.GetEvent<RootPublishedEventDto>(context.Distributor);
        var filter = published.CreateFilterInput((ulong)epoch, BlockParameter.CreateEarliest(), BlockParameter.CreateLatest());
        var logs = await published.GetAllChangesAsync(filter).WaitAsync(cancellation);
        var log = logs.SingleOrDefault() ?? throw new InvalidOperationException($"The distributor holds a root for epoch {epoch} but no RootPublished log for it was found.");
        return (log.Log.TransactionHash, (long)log.Log.BlockNumber.Value);
    }

    /// <summary>
    /// Appends one event to the epoch's stream, expecting it to hold exactly the events this document was built from
    /// (two once calculated, three with the intent): a publisher acting on an outdated view fails instead of recording twice.
    /// </summary>
    private async Task AppendAsync(RewardEpoch epoch, object @event, CancellationToken cancellation)
    {
        var version = epoch.Requested is null ? 2 : 3;
        await using (var session = store.LightweightSession())
        {
            // Marten's expected version is the stream's version after this append.
            session.Events.Append(RewardEpoch.StreamId(epoch.Epoch), version + 1, @event);
            await session.SaveChangesAsync(cancellation);
        }
        if (@event is RootPublishRequested requested)
        {
            epoch.Requested = requested;
            epoch.Status = RewardEpochStatus.Publishing;
        }
    }
}
