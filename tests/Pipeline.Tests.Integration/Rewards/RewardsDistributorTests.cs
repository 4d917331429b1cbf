using System.Numerics;
using Nethereum.Hex.HexConvertors.Extensions;
using Pipeline.Core.Crypto;
using Pipeline.Core.Rewards;
using Pipeline.Rewards.Chain;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Rewards;

/// <summary>RewardsDistributor on a real anvil through the chain client, with roots and proofs from @openzeppelin/merkle-tree.</summary>
[Trait("Category", "Integration")]
public sealed class RewardsDistributorTests(AnvilChain chain) : IClassFixture<AnvilChain>
{
    private static readonly BigInteger Token = BigInteger.Pow(10, 18);

    [Fact]
    public async Task Claim_WithOpenZeppelinProofs_PaysEachContributorAndTheTreasuryFundsExactlyWhatIsOwed()
    {
        var deployment = await chain.DeployAsync();
        var selfClaimer = await chain.NewFundedAccountAsync();
        var leaves = RandomLeaves(40).Append(new RewardLeaf(EthAddress.Parse(selfClaimer.Address), 7 * Token + 3)).ToList();
        var expected = OpenZeppelin(leaves);
        var tree = RewardsMerkleTree.Build(leaves);
        Assert.Equal(expected.Root, Hex.Encode0x(tree.Root));
        var treasuryBefore = await chain.BalanceAsync(deployment, chain.Treasury.Address);

        var published = await Publish(deployment, 1, expected.Root, tree.TotalOwed);

        Assert.Equal(2, (int)published.Type.Value); // EIP-1559
        Assert.Equal(treasuryBefore - tree.TotalOwed, await chain.BalanceAsync(deployment, chain.Treasury.Address));
        Assert.Equal(tree.TotalOwed, await chain.BalanceAsync(deployment, deployment.Distributor.Address));

        var claimed = BigInteger.Zero;
        foreach (var i in new[] { 0, 1, 17, 39 })
        {
            await Claim(chain.Operator, deployment, leaves[i], expected.Proofs[i]);
            Assert.Equal(leaves[i].CumulativeAmount, await chain.BalanceAsync(deployment, leaves[i].Account.ToString()));
            claimed += leaves[i].CumulativeAmount;
        }
        // A contributor claims for itself with a transaction it signs.
        await Claim(selfClaimer, deployment, leaves[^1], expected.Proofs[^1]);
        claimed += leaves[^1].CumulativeAmount;
        Assert.Equal(7 * Token + 3, await chain.BalanceAsync(deployment, selfClaimer.Address));

        Assert.Equal(tree.TotalOwed - claimed, await chain.BalanceAsync(deployment, deployment.Distributor.Address));
    }

    [Fact]
    public async Task Claim_WithAnAlteredProofAmountOrAccount_RevertsInvalidProof()
    {
        var deployment = await chain.DeployAsync();
        var leaves = RandomLeaves(12);
        var expected = OpenZeppelin(leaves);
        await Publish(deployment, 1, expected.Root, Sum(leaves));
        var leaf = leaves[5];
        var proof = expected.Proofs[5];

        var flipped = proof.ToArray();
        flipped[0] = flipped[0][..^1] + (flipped[0][^1] == '0' ? '1' : '0');
        await AssertReverts("InvalidProof", () => Claim(chain.Operator, deployment, leaf, flipped));
        await AssertReverts("InvalidProof", () => Claim(chain.Operator, deployment, leaf, proof[..^1]));
        await AssertReverts("InvalidProof", () => Claim(chain.Operator, deployment, leaf with { CumulativeAmount = leaf.CumulativeAmount + 1 }, proof));
        await AssertReverts("InvalidProof", () => Claim(chain.Operator, deployment, leaf with { Account = leaves[6].Account }, proof));
        await AssertReverts("InvalidProof", () => Claim(chain.Operator, deployment, leaves[6], proof));

        Assert.Equal(0, await chain.BalanceAsync(deployment, leaf.Account.ToString()));
        await Claim(chain.Operator, deployment, leaf, proof);
        Assert.Equal(leaf.CumulativeAmount, await chain.BalanceAsync(deployment, leaf.Account.ToString()));
    }

    [Fact]
    public async Task Claim_ASecondTime_RevertsNothingToClaimAndPaysNothingMore()
    {
        var deployment = await chain.DeployAsync();
        var leaves = RandomLeaves(5);
        var expected = OpenZeppelin(leaves);
        await Publish(deployment, 1, expected.Root, Sum(leaves));
        await Claim(chain.Operator, deployment, leaves[2], expected.Proofs[2]);

        var second = await AssertReverts("NothingToClaim", () => Claim(chain.Operator, deployment, leaves[2], expected.Proofs[2]));

        Assert.Equal(leaves[2].CumulativeAmount, (BigInteger)second.Arguments["alreadyClaimed"]!);
        Assert.Equal(leaves[2].CumulativeAmount, await chain.BalanceAsync(deployment, leaves[2].Account.ToString()));
    }

    [Fact]
    public async Task PublishRoot_ForAnEpochAlreadyPublishedOrOlder_RevertsWithItsNamedError()
    {
        var deployment = await chain.DeployAsync();
        var first = RandomLeaves(4);
        await Publish(deployment, 5, OpenZeppelin(first).Root, Sum(first));
        var other = OpenZeppelin(RandomLeaves(4)).Root;

        var again = await AssertReverts("EpochAlreadyPublished", () => Publish(deployment, 5, other, Sum(first)));
        Assert.Equal(5, (BigInteger)again.Arguments["epoch"]!);
        await AssertReverts("StaleEpoch", () => Publish(deployment, 4, other, Sum(first)));
        await AssertReverts("EmptyRoot", () => Publish(deployment, 6, "0x" + new string('0', 64), Sum(first)));
        await AssertReverts("TotalOwedDecreased", () => Publish(deployment, 6, other, Sum(first) - 1));

        var outsider = await chain.NewFundedAccountAsync();
        await AssertReverts("OwnableUnauthorizedAccount", () => outsider.SendAsync(deployment.Distributor.Address,
            new PublishRootFunction { Epoch = 6, Root = other.HexToByteArray(), ContentHash = new byte[32], TotalOwed = Sum(first) }));

        Assert.Equal(OpenZeppelin(first).Root, (await RootOf(deployment, 5)).ToHex(prefix: true));
        Assert.Equal(6UL, await chain.Operator.QueryAsync<NextEpochFunction, ulong>(deployment.Distributor.Address, new NextEpochFunction()));
    }

    [Fact]
    public async Task Claims_OverTwoEpochs_PayExactlyTheDifferenceAndTheTreasuryFundsOnlyWhatIsNewlyOwed()
    {
        var deployment = await chain.DeployAsync();
        var epoch1 = RandomLeaves(20);
        var tree1 = OpenZeppelin(epoch1);
        var treasuryStart = await chain.BalanceAsync(deployment, chain.Treasury.Address);
        await Publish(deployment, 1, tree1.Root, Sum(epoch1));
        await Claim(chain.Operator, deployment, epoch1[3], tree1.Proofs[3]);

        // Epoch 2: everyone earns more, and a newcomer joins.
        var epoch2 = epoch1.Select((l, i) => l with { CumulativeAmount = l.CumulativeAmount + (i + 1) * Token }).Append(RandomLeaves(1)[0]).ToList();
        var tree2 = OpenZeppelin(epoch2);
        await Publish(deployment, 2, tree2.Root, Sum(epoch2));
        Assert.Equal(treasuryStart - Sum(epoch2), await chain.BalanceAsync(deployment, chain.Treasury.Address));

        // The proof for epoch 1's root no longer verifies: claims go against the latest root.
        await AssertReverts("InvalidProof", () => Claim(chain.Operator, deployment, epoch1[4], tree1.Proofs[4]));

        await Claim(chain.Operator, deployment, epoch2[3], tree2.Proofs[3]);
        await Claim(chain.Operator, deployment, epoch2[4], tree2.Proofs[4]);
        Assert.Equal(epoch2[3].CumulativeAmount, await chain.BalanceAsync(deployment, epoch2[3].Account.ToString()));
        Assert.Equal(epoch2[4].CumulativeAmount, await chain.BalanceAsync(deployment, epoch2[4].Account.ToString()));
        var claimed = epoch2[3].CumulativeAmount + epoch2[4].CumulativeAmount;
        Assert.Equal(Sum(epoch2) - claimed, await chain.BalanceAsync(deployment, deployment.Distributor.Address));
    }

    private static BigInteger Sum(IEnumerable<RewardLeaf> leaves) => leaves.Aggregate(BigInteger.Zero, (s, l) => s + l.CumulativeAmount);

    private static List<RewardLeaf> RandomLeaves(int count) =>
        [.. Enumerable.Range(0, count).Select(_ => new RewardLeaf(EthKey.Generate().Address, Random.Shared.NextInt64(1, long.MaxValue) * (BigInteger)Random.Shared.Next(1, 1000)))];

    private static OpenZeppelinMerkleTree OpenZeppelin(IEnumerable<RewardLeaf> leaves) =>
        OpenZeppelinMerkleTree.Build([leaves.Select(l => (l.Account.ToLowerHex(), l.CumulativeAmount.ToString()))]).Single();

    private Task<Nethereum.RPC.Eth.DTOs.TransactionReceipt> Publish(ChainDeployment deployment, ulong epoch, string root, BigInteger totalOwed) =>
        chain.Operator.SendAsync(deployment.Distributor.Address, new PublishRootFunction
        {
            Epoch = epoch,
            Root = root.HexToByteArray(),
            ContentHash = Keccak256.Hash(BitConverter.GetBytes(epoch)),
            TotalOwed = totalOwed,
        });

    private static Task<Nethereum.RPC.Eth.DTOs.TransactionReceipt> Claim(ChainClient sender, ChainDeployment deployment, RewardLeaf leaf, string[] proof) =>
        sender.SendAsync(deployment.Distributor.Address, new ClaimFunction
        {
            Account = leaf.Account.ToString(),
            CumulativeAmount = leaf.CumulativeAmount,
            Proof = [.. proof.Select(p => p.HexToByteArray())],
        });

    private Task<byte[]> RootOf(ChainDeployment deployment, ulong epoch) =>
        chain.Operator.QueryAsync<RootOfFunction, byte[]>(deployment.Distributor.Address, new RootOfFunction { Epoch = epoch });

    private static async Task<ContractRevertedException> AssertReverts(string error, Func<Task> action)
    {
        var reverted = await Assert.ThrowsAsync<ContractRevertedException>(action);
        Assert.Equal(error, reverted.Error);
        return reverted;
    }
}
