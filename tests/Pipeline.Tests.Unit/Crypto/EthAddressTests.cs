using Pipeline.Core.Crypto;

namespace Pipeline.Tests.Unit.Crypto;

public sealed class EthAddressTests
{
    [Theory]
    // The examples of EIP-55 itself.
    [InlineData("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")]
    [InlineData("0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359")]
    [InlineData("0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB")]
    [InlineData("0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb")]
    public void ToString_WritesTheEip55Checksum(string checksummed)
    {
        Assert.Equal(checksummed, EthAddress.Parse(checksummed.ToLowerInvariant()).ToString());
        Assert.Equal(checksummed, EthAddress.Parse("0x" + checksummed[2..].ToUpperInvariant()).ToString());
    }

    [Fact]
    public void TryParse_MixedCaseWithWrongChecksum_IsFalse()
    {
        Assert.False(EthAddress.TryParse("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD".AsSpan(), out _));
    }

    [Theory]
    [InlineData("")]
    [InlineData("5aaeb6053f3e94c9b9a09f33669435e7ef1beaed")]
    [InlineData("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beae")]
    [InlineData("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaedd")]
    [InlineData("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaeg")]
    public void TryParse_NotFortyHexDigits_IsFalse(string text)
    {
        Assert.False(EthAddress.TryParse(text.AsSpan(), out _));
    }

    [Fact]
    public void Equality_IgnoresTheCaseItWasWrittenIn()
    {
        var a = EthAddress.Parse("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed");
        var b = EthAddress.Parse("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed");
        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.Equal("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", a.ToLowerHex());
    }
}
