using System.Numerics;
using Pipeline.Core.Crypto;

namespace Pipeline.Core.Rewards;

/// <summary>One leaf of an epoch's rewards tree: what <paramref name="Account"/> has earned over all epochs so far.</summary>
public readonly record struct RewardLeaf(EthAddress Account, BigInteger CumulativeAmount);

/// <summary>
/// OpenZeppelin's StandardMerkleTree over <c>(address, uint256)</c> leaves, as <c>@openzeppelin/merkle-tree</c> builds
/// it and <c>MerkleProof.verify</c> checks it: leaf = keccak256(keccak256(abi.encode(account, amount))), leaves sorted
/// by hash, node = keccak256 of its two children in ascending order, the tree stored as a flat array with the root
/// first and the leaves last (in reverse sorted order), a proof listing the siblings from the leaf up.
/// </summary>
public sealed class RewardsMerkleTree
{
    public const int HashSize = Keccak256.Size;

    private static readonly BigInteger Uint256Limit = BigInteger.One << 256;

    private readonly byte[][] _nodes;
    private readonly Dictionary<EthAddress, int> _nodeOfAccount;

    private RewardsMerkleTree(IReadOnlyList<RewardLeaf> leaves, byte[][] nodes, Dictionary<EthAddress, int> nodeOfAccount)
    {
        Leaves = leaves;
        _nodes = nodes;
        _nodeOfAccount = nodeOfAccount;
    }

    /// <summary>The leaves in the order they were given.</summary>
    public IReadOnlyList<RewardLeaf> Leaves { get; }

    public byte[] Root => (byte[])_nodes[0].Clone();

    /// <summary>The sum of every leaf's cumulative amount: what the distributor must hold for all claims under this root.</summary>
    public BigInteger TotalOwed => Leaves.Aggregate(BigInteger.Zero, (sum, leaf) => sum + leaf.CumulativeAmount);

    /// <summary>Builds the tree; an account may appear once (two leaves for one account would let it pick the larger).</summary>
    public static RewardsMerkleTree Build(IEnumerable<RewardLeaf> leaves)
    {
        var given = leaves.ToList();
        if (given.Count == 0) throw new ArgumentException("A rewards tree needs at least one leaf.", nameof(leaves));
        var accounts = new HashSet<EthAddress>();
        foreach (var leaf in given)
        {
            if (!accounts.Add(leaf.Account)) throw new ArgumentException($"Account {leaf.Account} appears more than once.", nameof(leaves));
        }

        var sorted = given.Select(leaf => (leaf.Account, Hash: LeafHash(leaf))).ToList();
        // A stable sort, as the library's Array.prototype.sort: equal hashes cannot occur with distinct accounts anyway.
        sorted = [.. sorted.OrderBy(entry => entry.Hash, HashComparer.Instance)];

        var nodes = new byte[2 * sorted.Count - 1][];
        var nodeOfAccount = new Dictionary<EthAddress, int>(sorted.Count);
        for (var i = 0; i < sorted.Count; i++)
        {
            var index = nodes.Length - 1 - i;
            nodes[index] = sorted[i].Hash;
            nodeOfAccount[sorted[i].Account] = index;
        }
        for (var i = nodes.Length - 1 - sorted.Count; i >= 0; i--)
            nodes[i] = NodeHash(nodes[2 * i + 1], nodes[2 * i + 2]);
        return new RewardsMerkleTree(given, nodes, nodeOfAccount);
    }

    public bool Contains(EthAddress account) => _nodeOfAccount.ContainsKey(account);

    /// <summary>The sibling hashes from the account's leaf up to the root, as <c>getProof</c> returns them.</summary>
    public IReadOnlyList<byte[]> GetProof(EthAddress account)
    {
        if (!_nodeOfAccount.TryGetValue(account, out var index)) throw new KeyNotFoundException($"Account {account} has no leaf in this tree.");
        var proof = new List<byte[]>();
        while (index > 0)
        {
            var sibling = index % 2 == 1 ? index + 1 : index - 1;
            proof.Add((byte[])_nodes[sibling].Clone());
            index = (index - 1) / 2;
        }
        return proof;
    }

    /// <summary>What <c>MerkleProof.verify(proof, root, leafHash)</c> answers on chain.</summary>
    public static bool Verify(ReadOnlySpan<byte> root, RewardLeaf leaf, IEnumerable<byte[]> proof)
    {
        var hash = LeafHash(leaf);
        foreach (var sibling in proof)
        {
            if (sibling.Length != HashSize) return false;
            hash = NodeHash(hash, sibling);
        }
        return root.SequenceEqual(hash);
    }

    /// <summary>keccak256(bytes.concat(keccak256(abi.encode(account, cumulativeAmount)))).</summary>
    public static byte[] LeafHash(RewardLeaf leaf)
    {
        if (leaf.CumulativeAmount.Sign < 0 || leaf.CumulativeAmount >= Uint256Limit)
            throw new ArgumentOutOfRangeException(nameof(leaf), leaf.CumulativeAmount, "A cumulative amount is a uint256: 0 ≤ amount < 2^256.");
        Span<byte> encoded = stackalloc byte[64];
        encoded.Clear();
        leaf.Account.CopyTo(encoded[12..32]);
        var digits = leaf.CumulativeAmount.GetByteCount(isUnsigned: true);
        leaf.CumulativeAmount.TryWriteBytes(encoded[(64 - digits)..], out _, isUnsigned: true, isBigEndian: true);
        Span<byte> inner = stackalloc byte[HashSize];
        Keccak256.Hash(encoded, inner);
        return Keccak256.Hash(inner);
    }

    private static byte[] NodeHash(byte[] a, byte[] b)
    {
        var hash = new byte[HashSize];
        if (HashComparer.Instance.Compare(a, b) <= 0) Keccak256.Hash(a, b, hash);
        else Keccak256.Hash(b, a, hash);
        return hash;
    }

    /// <summary>Orders 32-byte hashes as unsigned big-endian numbers, as the library's <c>compare</c> does.</summary>
    private sealed class HashComparer : IComparer<byte[]>
    {
        public static readonly HashComparer Instance = new();

        public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
    }
}
