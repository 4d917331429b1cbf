using System.Numerics;
using Nethereum.RPC.Eth.DTOs;
using Pipeline.Core.Crypto;
using Pipeline.Infra.Development;
using Pipeline.Rewards.Chain;

namespace Pipeline.Tests.Integration.Rewards;

/// <summary>The chain client's transactions, nonces and deployment record against a real anvil.</summary>
[Trait("Category", "Integration")]
public sealed class ChainClientTests(AnvilChain chain) : IClassFixture<AnvilChain>
{
    private static readonly string Someone = EthKey.FromSeed("chain-client-tests"u8).Address.ToString();

    [Fact]
    public async Task SendAsync_TwentyConcurrentTransfers_EachMinedOnceWithConsecutiveNoncesAsEip1559()
    {
        var deployment = await chain.DeployAsync();
        var treasury = await chain.Connect(AnvilChain.TreasuryKey);
        var nonceBefore = (await treasury.Web3.Eth.Transactions.GetTransactionCount.SendRequestAsync(treasury.Address)).Value;
        var recipients = Enumerable.Range(0, 20).Select(_ => EthKey.Generate().Address.ToString()).ToList();

        var receipts = await Task.WhenAll(recipients.Select((to, i) =>
            treasury.SendAsync(deployment.Token.Address, new TransferFunction { To = to, Value = i + 1 })));

        Assert.All(receipts, r => Assert.True(r.Succeeded()));
        Assert.All(receipts, r => Assert.Equal(2, (int)r.Type.Value));
        var nonces = new List<BigInteger>();
        foreach (var receipt in receipts)
            nonces.Add((await treasury.Web3.Eth.Transactions.GetTransactionByHash.SendRequestAsync(receipt.TransactionHash)).Nonce.Value);
        Assert.Equal(Enumerable.Range(0, 20).Select(i => nonceBefore + i), nonces.Order());
        for (var i = 0; i < recipients.Count; i++) Assert.Equal(i + 1, await chain.BalanceAsync(deployment, recipients[i]));
    }

    [Fact]
    public async Task SendAsync_AfterARevertedEstimate_KeepsTheNextNonce()
    {
        var deployment = await chain.DeployAsync();
        var sender = await chain.NewFundedAccountAsync();
        var reverted = await Assert.ThrowsAsync<ContractRevertedException>(() =>
            sender.SendAsync(deployment.Payments.Address, new PayFunction { BuyerId = new byte[32], Amount = 1 }));
        Assert.Equal("ZeroBuyerId", reverted.Error);

        var receipt = await sender.SendAsync(deployment.Token.Address, new ApproveFunction { Spender = deployment.Payments.Address, Value = 1 });

        Assert.Equal(0, (await sender.Web3.Eth.Transactions.GetTransactionByHash.SendRequestAsync(receipt.TransactionHash)).Nonce.Value);
    }

    [Fact]
    public async Task SendAsync_AfterItsTransactionWasDroppedByARevertedChain_TimesOutOnceThenUsesTheChainsNonce()
    {
        var deployment = await chain.DeployAsync();
        var sender = await chain.NewFundedAccountAsync(receiptTimeout: TimeSpan.FromSeconds(2));
        var snapshot = await new EvmSnapshot(chain.Operator.Web3.Client).SendRequestAsync();
        await sender.SendAsync(deployment.Token.Address, new ApproveFunction { Spender = deployment.Payments.Address, Value = 1 });
        Assert.True(await new EvmRevert(chain.Operator.Web3.Client).SendRequestAsync(snapshot));

        // The client counted on to nonce 1; the chain dropped nonce 0, so that transaction waits for a gap that never fills.
        await Assert.ThrowsAsync<TimeoutException>(() =>
            sender.SendAsync(deployment.Token.Address, new ApproveFunction { Spender = deployment.Payments.Address, Value = 2 }));

        var receipt = await sender.SendAsync(deployment.Token.Address, new ApproveFunction { Spender = deployment.Payments.Address, Value = 3 });
        Assert.Equal(0, (await sender.Web3.Eth.Transactions.GetTransactionByHash.SendRequestAsync(receipt.TransactionHash)).Nonce.Value);
    }

    [Fact]
    public async Task EnsureDeployed_TwiceOnOneChain_DeploysOnceAndReusesTheRecord()
    {
        var record = Path.Combine(Path.GetTempPath(), $"chain-{Guid.NewGuid():N}.json");
        try
        {
            var first = await ChainDeployment.EnsureAsync(chain.Operator, chain.Treasury.Address, AnvilChain.Supply, record);
            var blockAfterFirst = await chain.Operator.Web3.Eth.Blocks.GetBlockNumber.SendRequestAsync();

            var second = await ChainDeployment.EnsureAsync(chain.Operator, chain.Treasury.Address, AnvilChain.Supply, record);

            Assert.Equal(first, second);
            Assert.Equal(blockAfterFirst, await chain.Operator.Web3.Eth.Blocks.GetBlockNumber.SendRequestAsync());
            Assert.Equal("31337", first.ChainId);
            Assert.Equal(AnvilChain.Supply, await chain.BalanceAsync(first, chain.Treasury.Address));
        }
        finally
        {
            File.Delete(record);
        }
    }

    [Fact]
    public async Task EnsureDeployed_AfterTheChainWasReset_Redeploys_AndAfterARestartWithItsStateFile_Reuses()
    {
        var folder = Directory.CreateTempSubdirectory("anvil-state-");
        var record = Path.Combine(folder.FullName, "chain.json");
        var state = Path.Combine(folder.FullName, "state.json");
        try
        {
            ChainDeployment deployed;
            await using (var node = await AnvilNode.StartAsync(new AnvilOptions(AnvilChain.AnvilExecutable, StateFile: state)))
            {
                var client = await ChainClient.ConnectAsync(node.RpcUrl, AnvilNode.DefaultAccountKey, TimeSpan.FromSeconds(20));
                deployed = await ChainDeployment.EnsureAsync(client, client.Address, AnvilChain.Supply, record);
                await client.SendAsync(deployed.Token.Address, new TransferFunction { To = Someone, Value = 42 });
            }

            // Restarted from its state file: the same chain, so the record is reused and the transfer is still there.
            await using (var node = await AnvilNode.StartAsync(new AnvilOptions(AnvilChain.AnvilExecutable, StateFile: state)))
            {
                var client = await ChainClient.ConnectAsync(node.RpcUrl, AnvilNode.DefaultAccountKey, TimeSpan.FromSeconds(20));
                Assert.True(await deployed.IsOnChainAsync(client, client.Address));
                Assert.Equal(deployed, await ChainDeployment.EnsureAsync(client, client.Address, AnvilChain.Supply, record));
                Assert.Equal(42, await client.QueryAsync<BalanceOfFunction, BigInteger>(deployed.Token.Address, new BalanceOfFunction { Account = Someone }));
            }

            // A fresh chain (no state): the record no longer describes it, so the contracts are deployed again.
            await using (var node = await AnvilNode.StartAsync(new AnvilOptions(AnvilChain.AnvilExecutable)))
            {
                var client = await ChainClient.ConnectAsync(node.RpcUrl, AnvilNode.DefaultAccountKey, TimeSpan.FromSeconds(20));
                Assert.False(await deployed.IsOnChainAsync(client, client.Address));
                Assert.Equal(0, (await client.Web3.Eth.Blocks.GetBlockNumber.SendRequestAsync()).Value);
                var redeployed = await ChainDeployment.EnsureAsync(client, client.Address, AnvilChain.Supply, record);
                // Three deployment transactions, one block each. (The blocks may even hash as before: the same
                // transactions in the same second on an empty chain make the same blocks, and the same deployment.)
                Assert.Equal(3, (await client.Web3.Eth.Blocks.GetBlockNumber.SendRequestAsync()).Value);
                Assert.True(await redeployed.IsOnChainAsync(client, client.Address));
                Assert.Equal(0, await client.QueryAsync<BalanceOfFunction, BigInteger>(redeployed.Token.Address, new BalanceOfFunction { Account = Someone }));
            }
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }
}
