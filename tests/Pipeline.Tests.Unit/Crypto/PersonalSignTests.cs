using System.Numerics;
using Pipeline.Core.Crypto;

namespace Pipeline.Tests.Unit.Crypto;

public sealed class PersonalSignTests
{
    private static readonly BigInteger Order = BigInteger.Parse("0FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", System.Globalization.NumberStyles.HexNumber);
    private readonly EthKey _key = EthKey.FromSeed("personal-sign-tests"u8);

    [Fact]
    public void Recover_AcceptsVAs27Or28And0Or1()
    {
        var message = "reading"u8.ToArray();
        var signature = _key.SignPersonal(message);
        Assert.InRange(signature[64], 27, 28);
        var zeroBased = (byte[])signature.Clone();
        zeroBased[64] -= 27;
        Assert.Equal(SignatureCheck.Valid, PersonalSign.TryRecover(message, signature, out var a));
        Assert.Equal(SignatureCheck.Valid, PersonalSign.TryRecover(message, zeroBased, out var b));
        Assert.Equal(_key.Address, a);
        Assert.Equal(_key.Address, b);
    }

    [Fact]
    public void Recover_OfMalleableHighSTwin_IsRejected()
    {
        var message = "reading"u8.ToArray();
        var signature = _key.SignPersonal(message);
        // (r, n − s, v flipped) verifies mathematically for the same key; Ethereum (EIP-2) and we refuse it.
        var s = new BigInteger(signature.AsSpan(32, 32), isUnsigned: true, isBigEndian: true);
        var twin = (byte[])signature.Clone();
        (Order - s).TryWriteBytes(twin.AsSpan(32, 32), out _, isUnsigned: true, isBigEndian: true);
        twin[64] = (byte)(signature[64] == 27 ? 28 : 27);
        Assert.Equal(SignatureCheck.HighS, PersonalSign.TryRecover(message, twin, out _));
    }

    [Theory]
    [InlineData(26)]
    [InlineData(2)]
    [InlineData(29)]
    public void Recover_WithAnotherRecoveryByte_IsRejected(byte v)
    {
        var signature = _key.SignPersonal("x"u8);
        signature[64] = v;
        Assert.Equal(SignatureCheck.BadRecoveryByte, PersonalSign.TryRecover("x"u8, signature, out _));
    }

    [Fact]
    public void Recover_WithWrongLength_IsRejected()
    {
        Assert.Equal(SignatureCheck.WrongLength, PersonalSign.TryRecover("x"u8, new byte[64], out _));
    }

    [Fact]
    public void Recover_WithZeroScalars_IsRejected()
    {
        var signature = new byte[65];
        signature[64] = 27;
        Assert.Equal(SignatureCheck.ScalarOutOfRange, PersonalSign.TryRecover("x"u8, signature, out _));
    }

    [Fact]
    public void Hash_PrefixesTheDecimalLength()
    {
        // keccak256("\x19Ethereum Signed Message:\n5hello"), as ethers.hashMessage("hello") prints it.
        Span<byte> hash = stackalloc byte[32];
        PersonalSign.Hash("hello"u8, hash);
        Assert.Equal("0x50b2c43fd39106bafbba0da34fc430e1f91e3c96ea2acee2bc34119f92b37750", Hex.Encode0x(hash));
    }
}
