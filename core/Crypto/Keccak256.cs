using Org.BouncyCastle.Crypto.Digests;

namespace Pipeline.Core.Crypto;

/// <summary>Keccak-256 as Ethereum uses it (the original Keccak padding, not NIST SHA3-256).</summary>
public static class Keccak256
{
    public const int Size = 32;

    // One digest per thread: the BouncyCastle digest is stateful but cheap to reset, so the hot path allocates nothing.
    [ThreadStatic] private static KeccakDigest? _digest;

    public static void Hash(ReadOnlySpan<byte> data, Span<byte> hash)
    {
        // Checked before the digest takes input: a throw from DoFinal would leave this thread's digest half-fed.
        ArgumentOutOfRangeException.ThrowIfLessThan(hash.Length, Size);
        var digest = _digest ??= new KeccakDigest(256);
        digest.BlockUpdate(data);
        digest.DoFinal(hash);
    }

    /// <summary>keccak256(prefix ‖ data) without concatenating the two.</summary>
    public static void Hash(ReadOnlySpan<byte> prefix, ReadOnlySpan<byte> data, Span<byte> hash)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(hash.Length, Size);
        var digest = _digest ??= new KeccakDigest(256);
        digest.BlockUpdate(prefix);
        digest.BlockUpdate(data);
        digest.DoFinal(hash);
    }

    public static byte[] Hash(ReadOnlySpan<byte> data)
    {
        var hash = new byte[Size];
        Hash(data, hash);
        return hash;
    }
}
