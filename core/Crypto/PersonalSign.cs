
namespace Pipeline.Core.Crypto;

/// <summary>Why a signature does not verify; everything but <see cref="Valid"/> maps to reason code bad_signature.</summary>
public enum SignatureCheck
{
    Valid,
    WrongLength,
    BadRecoveryByte,
    ScalarOutOfRange,
    HighS,
    NotRecoverable,
}

/// <summary>
/// EIP-191 version 0x45 ("personal_sign"): keccak256("\x19Ethereum Signed Message:\n" + len(message) + message),
/// signed as r‖s‖v with v = 27/28 (0/1 accepted on input). What <c>cast wallet sign</c> and ethers'
/// <c>signMessage</c> produce.
/// </summary>
public static class PersonalSign
{
    public const int SignatureSize = 65;

    // secp256k1 group order n and n/2, big-endian: s above n/2 is the malleable twin of a valid signature.
    private static ReadOnlySpan<byte> Order => [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0xBA, 0xAE, 0xDC, 0xE6, 0xAF, 0x48, 0xA0, 0x3B, 0xBF, 0xD2, 0x5E, 0x8C, 0xD0, 0x36, 0x41, 0x41];
    private static ReadOnlySpan<byte> HalfOrder => [0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x5D, 0x57, 0x6E, 0x73, 0x57, 0xA4, 0x50, 0x1D, 0xDF, 0xE9, 0x2F, 0x46, 0x68, 0x1B, 0x20, 0xA0];

    public static void Hash(ReadOnlySpan<byte> message, Span<byte> hash)
    {
        Span<byte> prefix = stackalloc byte[26 + 10];
        "\u0019Ethereum Signed Message:\n"u8.CopyTo(prefix);
        message.Length.TryFormat(prefix[26..], out var digits);
        Keccak256.Hash(prefix[..(26 + digits)], message, hash);
    }

    public static byte[] Sign(ReadOnlySpan<byte> message, ReadOnlySpan<byte> privateKey, Secp256k1? curve = null)
    {
        Span<byte> hash = stackalloc byte[32];
        Hash(message, hash);
        return SignHash(hash, privateKey, curve);
    }

    /// <summary>Signs a 32-byte digest as it is (an EIP-712 digest, say): r‖s‖v with v = 27/28.</summary>
    public static byte[] SignHash(ReadOnlySpan<byte> hash, ReadOnlySpan<byte> privateKey, Secp256k1? curve = null)
    {
        var signature = new byte[SignatureSize];
        var recoveryId = (curve ?? Secp256k1.Default).Sign(hash, privateKey, signature.AsSpan(0, 64));
        signature[64] = (byte)(27 + recoveryId);
        return signature;
    }

    /// <summary>Recovers the address that signed <paramref name="message"/>; rejects malleable (high-s) signatures.</summary>
    public static SignatureCheck TryRecover(ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature, out EthAddress signer, Secp256k1? curve = null)
    {
        Span<byte> hash = stackalloc byte[32];
        Hash(message, hash);
        return TryRecoverHash(hash, signature, out signer, curve);
    }

    public static SignatureCheck TryRecoverHash(ReadOnlySpan<byte> hash, ReadOnlySpan<byte> signature, out EthAddress signer, Secp256k1? curve = null)
    {
        signer = default;
        if (signature.Length != SignatureSize) return SignatureCheck.WrongLength;
        var recoveryId = signature[64] switch
        {
            27 or 28 => signature[64] - 27,
            0 or 1 => signature[64],
            _ => -1,
        };
        if (recoveryId < 0) return SignatureCheck.BadRecoveryByte;
        var r = signature[..32];
        var s = signature[32..64];
        if (IsZero(r) || IsZero(s) || r.SequenceCompareTo(Order) >= 0 || s.SequenceCompareTo(Order) >= 0) return SignatureCheck.ScalarOutOfRange;
        if (s.SequenceCompareTo(HalfOrder) > 0) return SignatureCheck.HighS;
        Span<byte> publicKey = stackalloc byte[64];
        if (!(curve ?? Secp256k1.Default).TryRecover(hash, signature[..64], recoveryId, publicKey)) return SignatureCheck.NotRecoverable;
        signer = EthAddress.FromPublicKey(publicKey);
        return SignatureCheck.Valid;
    }

    private static bool IsZero(ReadOnlySpan<byte> scalar) => scalar.IndexOfAnyExcept((byte)0) < 0;
}
