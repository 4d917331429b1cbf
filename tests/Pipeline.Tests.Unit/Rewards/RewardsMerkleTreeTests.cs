using System.Numerics;
using Pipeline.Core.Crypto;
using Pipeline.Core.Rewards;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Unit.Rewards;

/// <summary>Roots and proofs compared with @openzeppelin/merkle-tree's StandardMerkleTree, the library the design names.</summary>
public sealed class RewardsMerkleTreeTests
{
    [Fact]
    public void Build_RandomSetsOfHundredsOfAccounts_RootAndEveryProofEqualOpenZeppelins()
    {
        var random = new Random(20261205);
        int[] sizes = [1, 2, 3, 7, 256, 300, 513];
        var sets = sizes.Select(size => RandomLeaves(random, size)).ToList();

        var expected = OpenZeppelinMerkleTree.Build(sets.Select(set => set.Select(l => (l.Account.ToLowerHex(), l.CumulativeAmount.ToString()))));

        for (var s = 0; s < sets.Count; s++)
        {
            var tree = RewardsMerkleTree.Build(sets[s]);
            Assert.Equal(expected[s].Root, Hex.Encode0x(tree.Root));
            for (var i = 0; i < sets[s].Count; i++)
            {
                var proof = tree.GetProof(sets[s][i].Account);
                Assert.Equal(expected[s].Proofs[i], proof.Select(p => Hex.Encode0x(p)).ToArray());
                Assert.True(RewardsMerkleTree.Verify(tree.Root, sets[s][i], proof));
            }
        }
    }

    [Fact]
    public void Verify_AlteredAmountAccountOrProof_IsFalse()
    {
        var leaves = RandomLeaves(new Random(7), 40);
        var tree = RewardsMerkleTree.Build(leaves);
        var leaf = leaves[13];
        var proof = tree.GetProof(leaf.Account).ToList();

        Assert.True(RewardsMerkleTree.Verify(tree.Root, leaf, proof));
        Assert.False(RewardsMerkleTree.Verify(tree.Root, leaf with { CumulativeAmount = leaf.CumulativeAmount + 1 }, proof));
        Assert.False(RewardsMerkleTree.Verify(tree.Root, leaf with { Account = leaves[14].Account }, proof));
        Assert.False(RewardsMerkleTree.Verify(tree.Root, leaf, proof[..^1]));
        var flipped = proof.Select(p => (byte[])p.Clone()).ToList();
        flipped[0][31] ^= 1;
        Assert.False(RewardsMerkleTree.Verify(tree.Root, leaf, flipped));
    }

    [Fact]
    public void Build_NoLeavesADuplicateAccountOrAnAmountOutsideUint256_Throws()
    {
        var account = EthKey.FromSeed("merkle"u8).Address;
        Assert.Throws<ArgumentException>(() => RewardsMerkleTree.Build([]));
        Assert.Throws<ArgumentException>(() => RewardsMerkleTree.Build([new(account, 1), new(account, 2)]));
        Assert.Throws<ArgumentOutOfRangeException>(() => RewardsMerkleTree.Build([new(account, -1)]));
        Assert.Throws<ArgumentOutOfRangeException>(() => RewardsMerkleTree.Build([new(account, BigInteger.One << 256)]));
    }

    [Fact]
    public void TotalOwed_IsTheSumOfTheCumulativeAmounts()
    {
        var leaves = RandomLeaves(new Random(3), 25);
        Assert.Equal(leaves.Aggregate(BigInteger.Zero, (sum, l) => sum + l.CumulativeAmount), RewardsMerkleTree.Build(leaves).TotalOwed);
    }

    /// <summary>Distinct random accounts with amounts of every size: zero, token-sized (18 decimals) and near 2^256.</summary>
    private static List<RewardLeaf> RandomLeaves(Random random, int count)
    {
        var accounts = new HashSet<EthAddress>();
        var leaves = new List<RewardLeaf>(count);
        while (leaves.Count < count)
        {
            var address = new EthAddress(RandomBytes(random, EthAddress.Size));
            if (!accounts.Add(address)) continue;
            var amount = new BigInteger(RandomBytes(random, random.Next(4) switch { 0 => 0, 1 => 9, 2 => 16, _ => 32 }), isUnsigned: true, isBigEndian: true);
            leaves.Add(new RewardLeaf(address, amount));
        }
        return leaves;
    }

    private static byte[] RandomBytes(Random random, int count)
    {
        var bytes = new byte[count];
        random.NextBytes(bytes);
        return bytes;
    }
}
