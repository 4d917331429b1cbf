namespace Pipeline.Core.Crypto;

/// <summary>
/// Recoverable ECDSA on secp256k1, the curve of Ethereum keys. Two implementations keep one contract:
/// Debian's libsecp256k1 through P/Invoke (fast) and BouncyCastle (managed fallback when the library is absent).
/// Signing uses the RFC 6979 deterministic nonce and low-s, so both produce the same bytes as cast and ethers.
/// </summary>
public abstract class Secp256k1
{
    /// <summary>The native implementation when libsecp256k1 loads, else the managed one.</summary>
    public static Secp256k1 Default { get; } = (Secp256k1?)NativeSecp256k1.TryLoad() ?? ManagedSecp256k1.Instance;

    public abstract string Name { get; }

    /// <summary>
    /// Recovers the 64-byte public key X‖Y that produced the compact signature r‖s with recovery id 0 or 1 over a
    /// 32-byte hash. False when no key does (r or s out of range, r not an x coordinate on the curve).
    /// </summary>
    public abstract bool TryRecover(ReadOnlySpan<byte> hash, ReadOnlySpan<byte> signature64, int recoveryId, Span<byte> publicKey64);

    /// <summary>Signs a 32-byte hash: compact low-s r‖s and the recovery id.</summary>
    public abstract int Sign(ReadOnlySpan<byte> hash, ReadOnlySpan<byte> privateKey, Span<byte> signature64);

    /// <summary>The 64-byte public key X‖Y of a private key; false if the key is not in [1, n-1].</summary>
    public abstract bool TryGetPublicKey(ReadOnlySpan<byte> privateKey, Span<byte> publicKey64);

    public override string ToString() => Name;
}
