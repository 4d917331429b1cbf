using Marten;
using Marten.Services;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Nethereum.Hex.HexConvertors.Extensions;
using Nethereum.Web3;
using Npgsql;
using Pipeline.Core.Crypto;
using Pipeline.Core.Events;
using Pipeline.Infra.Postgres;
using Pipeline.Rewards.Chain;

namespace Pipeline.Rewards.Payments;

/// <summary>
/// Credits buyers for their on-chain payments: follows the Payments contract's PaymentReceived logs with confirmations
/// and a reorg-safe cursor (<see cref="LogFollower{TEvent}"/>) and appends <see cref="PaymentReceived"/> to the buyer's
/// stream. Each log is handled exactly once per (chain, transaction, log index): its <see cref="ChainPayment"/> record,
/// the event and the cursor are written in one transaction, on the session that holds the lead (one follower per
/// contract), and a log read again (a restart, a rewound cursor, a reorganisation) finds its record and is skipped. A
/// payment that credits nobody is kept as an unattributed <see cref="ChainPayment"/> for the operator.
/// </summary>
public sealed class PaymentFollower(
    IDocumentStore store,
    LeaderElection leaders,
    IOptions<PaymentsOptions> options,
    IPaymentsContractSource contracts,
    PaymentsMetrics metrics,
    TimeProvider clock,
    ILogger<PaymentFollower> logger) : BackgroundService
{
    private static readonly TimeSpan RetryAfterFailure = TimeSpan.FromSeconds(5);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var payments = await contracts.GetAsync(stoppingToken);
                var contract = payments.Address.ToLowerInvariant();
                await using var lead = await leaders.TryLeadAsync($"depin:payments:{store.Schema()}:{contract}", stoppingToken);
                if (lead is null)
                {
                    await Task.Delay(settings.PollInterval * 5, clock, stoppingToken);
                    continue;
                }
                var web3 = new Web3(payments.RpcUrl);
                var chainId = (long)(await web3.Eth.ChainId.SendRequestAsync().WaitAsync(stoppingToken)).Value;
                var follower = new LogFollower<PaymentReceivedEventDto>(web3, contract, settings.Confirmations);
                logger.LogInformation("Following payments to {Contract} on chain {ChainId} with {Confirmations} confirmations", contract, chainId, settings.Confirmations);
                while (!stoppingToken.IsCancellationRequested)
                {
                    if (!await FollowOnceAsync(lead, follower, chainId, payments, stoppingToken))
                        await Task.Delay(settings.PollInterval, clock, stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (ChainReorganisedBeyondCursorException e)
            {
                // Guessing here could credit a payment twice or never: the operator decides (see the README).
                logger.LogError("Payments are not followed: {Message}", e.Message);
                await Task.Delay(RetryAfterFailure * 12, clock, stoppingToken);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                // The chain or the database went away; whatever was not committed is read again.
                logger.LogWarning("Payment follower interrupted: {Message}; retrying in {Seconds} s", e.Message, RetryAfterFailure.TotalSeconds);
                await Task.Delay(RetryAfterFailure, clock, stoppingToken);
            }
        }
    }

    /// <summary>Reads the next confirmed blocks and commits what they hold with the new cursor; false when there was nothing new.</summary>
    private async Task<bool> FollowOnceAsync(NpgsqlConnection lead, LogFollower<PaymentReceivedEventDto> follower, long chainId, PaymentsContract payments, CancellationToken cancellation)
    {
        var contract = payments.Address.ToLowerInvariant();
        // On the lead's own session: a follower that lost the lead cannot commit beside its successor.
        await using var transaction = await lead.BeginTransactionAsync(cancellation);
        await using var session = store.LightweightSession(SessionOptions.ForTransaction(transaction, shouldAutoCommit: true));
        var cursorId = PaymentsCursor.Key(chainId, contract);
        var stored = await session.LoadAsync<PaymentsCursor>(cursorId, cancellation);
        var cursor = stored?.Cursor ?? LogCursor.StartAt(payments.StartBlock);
        var batch = await follower.PollAsync(cursor, cancellation);
        if (batch.ReorgedBlocks > 0)
        {
            metrics.Reorganised(batch.ReorgedBlocks);
            logger.LogWarning("The chain reorganised: stepped back {Blocks} blocks to {Block}", batch.ReorgedBlocks, batch.Cursor.NextBlock);
        }
        if (stored is not null && batch.Cursor.NextBlock == cursor.NextBlock && batch.ReorgedBlocks == 0) return false;

        var keys = batch.Logs.Select(l => ChainPayment.Key(chainId, l.TransactionHash, l.LogIndex)).ToList();
        var known = (await session.LoadManyAsync<ChainPayment>(cancellation, keys)).Select(p => p.Id).ToHashSet(StringComparer.Ordinal);
        var taken = new List<ChainPayment>();
        foreach (var (log, key) in batch.Logs.Zip(keys))
        {
            if (!known.Add(key)) continue;
            var payment = await DecideAsync(session, log, key, chainId, contract, cancellation);
            if (payment.Status == ChainPayment.Credited)
            {
                var paid = new PaymentReceived(payment.BuyerId, chainId, payment.TxHash, payment.LogIndex, payment.Payer, payment.TokenAmount, payment.Credits, payment.BlockNumber);
                var e = session.Events.BuildEvent(paid);
                // The same log always makes the same event id: the store's unique index refuses a second one whatever happens.
                e.Id = new Guid(Keccak256.Hash(System.Text.Encoding.UTF8.GetBytes("payment:" + payment.Id)).AsSpan(0, 16));
                session.Events.Append(payment.BuyerId, e);
            }
            session.Insert(payment);
            taken.Add(payment);
        }
        session.Store(new PaymentsCursor { Id = cursorId, Cursor = batch.Cursor, UpdatedAt = clock.GetUtcNow() });
        await session.SaveChangesAsync(cancellation);

        metrics.Read(batch.Cursor.NextBlock - 1);
        foreach (var payment in taken)
        {
            metrics.Followed(payment);
            if (payment.Status == ChainPayment.Credited)
                logger.LogInformation("Buyer {Buyer} paid {Amount} token units in {Tx} (log {Log}): {Credits} credits", payment.BuyerId, payment.TokenAmount, payment.TxHash, payment.LogIndex, payment.Credits);
            else
                logger.LogWarning("Unattributed payment {Id} of {Amount} token units from {Payer} for buyer id {Buyer}: {Reason}", payment.Id, payment.TokenAmount, payment.Payer, payment.BuyerId, payment.Reason);
        }
        return true;
    }

    private async Task<ChainPayment> DecideAsync(IDocumentSession session, FollowedLog<PaymentReceivedEventDto> log, string key, long chainId, string contract, CancellationToken cancellation)
    {
        var buyerId = log.Event.BuyerId.ToHex(prefix: true);
        var amount = log.Event.Amount;
        var credits = amount / options.Value.UnitsPerCredit;
        var reason = !await IsBuyerAsync(session, buyerId, cancellation) ? ChainPayment.UnknownBuyer
            : credits.IsZero ? ChainPayment.BelowOneCredit
            : credits > long.MaxValue ? ChainPayment.TooManyCredits
            : null;
        return new ChainPayment
        {
            Id = key,
            ChainId = chainId,
            Contract = contract,
            TxHash = log.TransactionHash.ToLowerInvariant(),
            LogIndex = log.LogIndex,
            BlockNumber = log.BlockNumber,
            BlockHash = log.BlockHash,
            BuyerId = buyerId,
            Payer = log.Event.Payer.ToLowerInvariant(),
            TokenAmount = amount.ToString(System.Globalization.CultureInfo.InvariantCulture),
            Credits = reason is null ? (long)credits : 0,
            Status = reason is null ? ChainPayment.Credited : ChainPayment.Unattributed,
            Reason = reason,
            FollowedAt = clock.GetUtcNow(),
        };
    }

    /// <summary>A buyer exists when a stream of that id starts with BuyerCreated (ids are 0x + 64 hex digits, like the log's bytes32).</summary>
    private static async Task<bool> IsBuyerAsync(IDocumentSession session, string buyerId, CancellationToken cancellation)
    {
        var first = await session.Events.FetchStreamAsync(buyerId, version: 1, token: cancellation);
        return first.Count > 0 && first[0].Data is BuyerCreated;
    }
}
