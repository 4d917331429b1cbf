using System.Text;
using Pipeline.Core.Crypto;

namespace Pipeline.Tests.Unit.Crypto;

public sealed class HexTests
{
    [Theory]
    [InlineData("00ff10ab", new byte[] { 0x00, 0xFF, 0x10, 0xAB })]
    [InlineData("00FF10AB", new byte[] { 0x00, 0xFF, 0x10, 0xAB })]
    [InlineData("00Ff10aB", new byte[] { 0x00, 0xFF, 0x10, 0xAB })]
    public void Digits_InEitherCase_DecodeAsChars_AndAsUtf8(string hex, byte[] expected)
    {
        var (fromChars, fromUtf8) = (new byte[expected.Length], new byte[expected.Length]);
        Assert.True(Hex.TryDecode(hex.AsSpan(), fromChars));
        Assert.True(Hex.TryDecode(Encoding.UTF8.GetBytes(hex), fromUtf8));
        Assert.Equal(expected, fromChars);
        Assert.Equal(expected, fromUtf8);
    }

    [Theory]
    [InlineData("00ff10a")]   // odd
    [InlineData("00ff10abcd")] // longer than the bytes
    [InlineData("00ff10ag")]  // not a digit
    [InlineData("00ff 0ab")]  // white space
    [InlineData("0xff10ab")]  // a prefix is the caller's to strip
    [InlineData("00ff10aé")]  // beyond ASCII
    [InlineData("00ff10a\0")]
    public void AnythingButExactlyTheDigitsOfTheBytes_IsRefused(string hex)
    {
        Assert.False(Hex.TryDecode(hex.AsSpan(), new byte[4]));
        Assert.False(Hex.TryDecode(Encoding.UTF8.GetBytes(hex), new byte[4]));
    }
}
