using System.Security.Cryptography;

namespace Pipeline.Core.Crypto;

/// <summary>A secp256k1 private key with its Ethereum address: a device key or an owner wallet.</summary>
public sealed class EthKey
{
    private readonly byte[] _secret;

    private EthKey(byte[] secret)
    {
        Span<byte> publicKey = stackalloc byte[64];
        if (!Secp256k1.Default.TryGetPublicKey(secret, publicKey)) throw new ArgumentException("A private key is 32 bytes in [1, n-1].");
        _secret = secret;
        Address = EthAddress.FromPublicKey(publicKey);
    }

    public EthAddress Address { get; }

    public static EthKey Generate()
    {
        while (true)
        {
            var secret = RandomNumberGenerator.GetBytes(32);
            if (IsValid(secret)) return new EthKey(secret);
        }
    }

    /// <summary>A key derived from a seed (keccak256, repeated until valid), for reproducible simulations and tests.</summary>
    public static EthKey FromSeed(ReadOnlySpan<byte> seed)
    {
        var secret = Keccak256.Hash(seed);
        while (!IsValid(secret)) secret = Keccak256.Hash(secret);
        return new EthKey(secret);
    }

    public static EthKey FromHex(string hex) => new(Hex.Decode(hex) is { Length: 32 } secret ? secret : throw new FormatException("A private key is 32 bytes of hex."));

    public string ToHex() => Hex.Encode0x(_secret);

    /// <summary>EIP-191 personal_sign over the message bytes: 65 bytes r‖s‖v, v = 27/28.</summary>
    public byte[] SignPersonal(ReadOnlySpan<byte> message) => PersonalSign.Sign(message, _secret);

    /// <summary>Signs a 32-byte digest as it is, such as an EIP-712 typed-data digest: 65 bytes r‖s‖v, v = 27/28.</summary>
    public byte[] SignHash(ReadOnlySpan<byte> hash) => PersonalSign.SignHash(hash, _secret);

    private static bool IsValid(ReadOnlySpan<byte> secret)
    {
        Span<byte> publicKey = stackalloc byte[64];
        return Secp256k1.Default.TryGetPublicKey(secret, publicKey);
    }

    public override string ToString() => Address.ToString();
}
