using System.Numerics;
using System.Text.Json;
using Nethereum.Util;
using Pipeline.Core.Crypto;
using Pipeline.Rewards.Chain;

namespace Pipeline.Tests.Integration.Rewards;

/// <summary>Buyers' PaymentReceived events followed with confirmations and a reorg-safe cursor, each seen once.</summary>
[Trait("Category", "Integration")]
public sealed class PaymentsFollowerTests(AnvilChain chain) : IClassFixture<AnvilChain>
{
    [Fact]
    public async Task Follower_WithTwoConfirmations_YieldsAPaymentOnlyOnceConfirmedAndOnceAcrossARestart()
    {
        var deployment = await chain.DeployAsync();
        var buyer = await FundedBuyerAsync(deployment);
        var cursor = LogCursor.StartAt(deployment.DeployedAtBlock);
        var follower = new LogFollower<PaymentReceivedEventDto>(chain.Operator.Web3, deployment.Payments.Address, confirmations: 2);
        var alice = BuyerId("alice");

        await buyer.SendAsync(deployment.Payments.Address, new PayFunction { BuyerId = alice, Amount = 100 });
        var unconfirmed = await follower.PollAsync(cursor);
        Assert.Empty(unconfirmed.Logs);

        await chain.MineAsync(2);
        var confirmed = await follower.PollAsync(unconfirmed.Cursor);
        var payment = Assert.Single(confirmed.Logs);
        Assert.Equal(alice, payment.Event.BuyerId);
        Assert.Equal(100, payment.Event.Amount);
        Assert.True(payment.Event.Payer.IsTheSameAddress(buyer.Address));

        // The process restarts: the cursor comes back from where it was stored, the follower is new.
        var stored = JsonSerializer.Serialize(confirmed.Cursor);
        var restarted = new LogFollower<PaymentReceivedEventDto>(chain.Operator.Web3, deployment.Payments.Address, confirmations: 2);
        var restoredCursor = JsonSerializer.Deserialize<LogCursor>(stored)!;
        Assert.Empty((await restarted.PollAsync(restoredCursor)).Logs);

        await buyer.SendAsync(deployment.Payments.Address, new PayFunction { BuyerId = alice, Amount = 250 });
        await chain.MineAsync(2);
        var after = await restarted.PollAsync(restoredCursor);
        Assert.Equal([250], after.Logs.Select(l => l.Event.Amount));
        Assert.Empty((await restarted.PollAsync(after.Cursor)).Logs);
    }

    [Fact]
    public async Task Follower_AcrossAReorganisation_SeesAReincludedPaymentOnceAndTheNewBranchsPayments()
    {
        var deployment = await chain.DeployAsync();
        var buyer = await FundedBuyerAsync(deployment);
        var follower = new LogFollower<PaymentReceivedEventDto>(chain.Operator.Web3, deployment.Payments.Address, confirmations: 0);
        var start = await follower.PollAsync(LogCursor.StartAt(deployment.DeployedAtBlock));
        var snapshot = await new EvmSnapshot(chain.Operator.Web3.Client).SendRequestAsync();

        // Payment A is signed once; the same signed transaction is what a reorganised chain includes again.
        var signedA = await SignPaymentAsync(buyer, deployment, BuyerId("a"), 10);
        var hashA = await chain.Operator.Web3.Eth.Transactions.SendRawTransaction.SendRequestAsync(signedA);
        await chain.Operator.WaitForReceiptAsync(hashA);
        var before = await follower.PollAsync(start.Cursor);
        Assert.Equal([hashA], before.Logs.Select(l => l.TransactionHash));

        // Reorganise: back to the snapshot, an empty block where A was, then A again and a new payment B.
        Assert.True(await new EvmRevert(chain.Operator.Web3.Client).SendRequestAsync(snapshot));
        await chain.MineAsync(1);
        Assert.Equal(hashA, await chain.Operator.Web3.Eth.Transactions.SendRawTransaction.SendRequestAsync(signedA));
        var receiptA = await chain.Operator.WaitForReceiptAsync(hashA);
        Assert.NotEqual(before.Logs[0].BlockHash, receiptA.BlockHash);
        var signedB = await SignPaymentAsync(buyer, deployment, BuyerId("b"), 20);
        var hashB = await chain.Operator.Web3.Eth.Transactions.SendRawTransaction.SendRequestAsync(signedB);
        await chain.Operator.WaitForReceiptAsync(hashB);

        var after = await follower.PollAsync(before.Cursor);

        Assert.True(after.ReorgedBlocks > 0);
        Assert.Equal([hashB], after.Logs.Select(l => l.TransactionHash));
        Assert.Empty((await follower.PollAsync(after.Cursor)).Logs);
    }

    [Fact]
    public async Task Follower_WhenTheChainNoLongerHoldsAnyBlockItRemembers_RefusesToGuess()
    {
        var deployment = await chain.DeployAsync();
        var follower = new LogFollower<PaymentReceivedEventDto>(chain.Operator.Web3, deployment.Payments.Address, confirmations: 0, checkpointsKept: 2);
        var snapshot = await new EvmSnapshot(chain.Operator.Web3.Client).SendRequestAsync();
        var cursor = LogCursor.StartAt(deployment.DeployedAtBlock);
        for (var i = 0; i < 3; i++)
        {
            await chain.MineAsync(1);
            cursor = (await follower.PollAsync(cursor)).Cursor;
        }
        Assert.Equal(2, cursor.Checkpoints.Count);

        // Back before all of them, and a transaction in the new branch's first block so that no block can hash as before.
        Assert.True(await new EvmRevert(chain.Operator.Web3.Client).SendRequestAsync(snapshot));
        var someone = await chain.NewFundedAccountAsync();
        await someone.SendAsync(deployment.Token.Address, new ApproveFunction { Spender = deployment.Payments.Address, Value = 1 });
        await chain.MineAsync(4);

        var refused = await Assert.ThrowsAsync<ChainReorganisedBeyondCursorException>(() => follower.PollAsync(cursor));
        Assert.Equal(cursor.Checkpoints[0].Number, refused.OldestCheckpoint);
    }

    private async Task<ChainClient> FundedBuyerAsync(ChainDeployment deployment)
    {
        var buyer = await chain.NewFundedAccountAsync();
        await chain.Treasury.SendAsync(deployment.Token.Address, new TransferFunction { To = buyer.Address, Value = 1_000_000 });
        await buyer.SendAsync(deployment.Token.Address, new ApproveFunction { Spender = deployment.Payments.Address, Value = 1_000_000 });
        return buyer;
    }

    /// <summary>A signed pay transaction, not sent: the test sends the same bytes before and after the reorganisation.</summary>
    private static async Task<string> SignPaymentAsync(ChainClient buyer, ChainDeployment deployment, byte[] buyerId, BigInteger amount)
    {
        var nonce = await buyer.Web3.Eth.Transactions.GetTransactionCount.SendRequestAsync(buyer.Address, Nethereum.RPC.Eth.DTOs.BlockParameter.CreatePending());
        var message = new PayFunction { BuyerId = buyerId, Amount = amount, FromAddress = buyer.Address, Nonce = nonce.Value, Gas = 200_000 };
        return await buyer.Web3.Eth.GetContractTransactionHandler<PayFunction>().SignTransactionAsync(deployment.Payments.Address, message);
    }

    private static byte[] BuyerId(string name) => Keccak256.Hash(System.Text.Encoding.UTF8.GetBytes(name));
}
