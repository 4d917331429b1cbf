using System.Security.Cryptography;
using Pipeline.Core.Crypto;

namespace Pipeline.Tests.Unit.Crypto;

/// <summary>One contract, run against the native and the managed implementation.</summary>
public abstract class Secp256k1ContractTests
{
    // Anvil's first development account: a key whose address every Ethereum tool agrees on.
    private const string AnvilKey = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    private const string AnvilAddress = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

    protected abstract Secp256k1 Curve { get; }

    [Fact]
    public void PublicKey_OfAnvilAccountZero_HasItsKnownAddress()
    {
        var publicKey = new byte[64];
        Assert.True(Curve.TryGetPublicKey(Hex.Decode(AnvilKey), publicKey));
        Assert.Equal(AnvilAddress, EthAddress.FromPublicKey(publicKey).ToString());
    }

    [Fact]
    public void Sign_ThenRecover_ReturnsTheSigningKey()
    {
        for (var i = 0; i < 50; i++)
        {
            var key = RandomKey();
            var hash = RandomNumberGenerator.GetBytes(32);
            var signature = new byte[64];
            var recoveryId = Curve.Sign(hash, key, signature);
            var expected = new byte[64];
            var recovered = new byte[64];
            Assert.True(Curve.TryGetPublicKey(key, expected));
            Assert.True(Curve.TryRecover(hash, signature, recoveryId, recovered));
            Assert.Equal(expected, recovered);
        }
    }

    [Fact]
    public void Sign_ProducesLowS()
    {
        var halfOrder = Convert.FromHexString("7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0");
        for (var i = 0; i < 50; i++)
        {
            var signature = new byte[64];
            Curve.Sign(RandomNumberGenerator.GetBytes(32), RandomKey(), signature);
            Assert.True(signature[32..].SequenceCompareTo(halfOrder) <= 0);
        }
    }

    [Fact]
    public void PersonalSign_OfHello_MatchesCastOutputForAnvilAccountZero()
    {
        // From `cast wallet sign --private-key <anvil key 0> hello`; RFC 6979 makes it the same bytes everywhere.
        const string castSignature = "0xf16ea9a3478698f695fd1401bfe27e9e4a7e8e3da94aa72b021125e31fa899cc573c48ea3fe1d4ab61a9db10c19032026e3ed2dbccba5a178235ac27f94504311c";
        var signature = PersonalSign.Sign("hello"u8, Hex.Decode(AnvilKey), Curve);
        Assert.Equal(castSignature, Hex.Encode0x(signature));
        Assert.Equal(SignatureCheck.Valid, PersonalSign.TryRecover("hello"u8, signature, out var signer, Curve));
        Assert.Equal(AnvilAddress, signer.ToString());
    }

    [Theory]
    [InlineData("0000000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141")]
    public void TryGetPublicKey_OfKeyOutsideTheGroup_IsFalse(string key)
    {
        var publicKey = new byte[64];
        Assert.False(Curve.TryGetPublicKey(Convert.FromHexString(key), publicKey));
    }

    [Fact]
    public void TryRecover_WithZeroR_IsFalse()
    {
        var signature = new byte[64];
        signature[63] = 1;
        var publicKey = new byte[64];
        Assert.False(Curve.TryRecover(RandomNumberGenerator.GetBytes(32), signature, 0, publicKey));
    }

    [Fact]
    public void TryRecover_WithRThatIsNoCurvePoint_IsFalse()
    {
        // x = 5 has no y on secp256k1 (5³ + 7 = 132 is not a square mod p).
        var signature = new byte[64];
        signature[31] = 5;
        signature[63] = 1;
        var publicKey = new byte[64];
        Assert.False(Curve.TryRecover(RandomNumberGenerator.GetBytes(32), signature, 0, publicKey));
    }

    internal static byte[] RandomKey()
    {
        var key = EthKey.Generate();
        return Hex.Decode(key.ToHex());
    }
}

public sealed class NativeSecp256k1Tests : Secp256k1ContractTests
{
    // Not skipped when absent: ./depin installs libsecp256k1-1, so its absence is a failure to report.
    protected override Secp256k1 Curve => NativeSecp256k1.TryLoad() ?? throw new InvalidOperationException("libsecp256k1 did not load; ./depin installs Debian's libsecp256k1-1.");
}

public sealed class ManagedSecp256k1Tests : Secp256k1ContractTests
{
    protected override Secp256k1 Curve => ManagedSecp256k1.Instance;
}
