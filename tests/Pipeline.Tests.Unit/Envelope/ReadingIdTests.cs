using System.Text;
using CsCheck;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;

namespace Pipeline.Tests.Unit.Envelope;

/// <summary>The reading id as a value (issue 16): the same id, hex and event id as the strings it replaces on the processors' path.</summary>
public sealed class ReadingIdTests
{
    [Fact]
    public void Of_AnyPayload_IsKeccakOfItsBytes_InHexAndAsEventId()
    {
        Gen.Byte.Array[0, 500].Sample(payload =>
        {
            var hash = Keccak256.Hash(payload);
            var id = ReadingId.Of(payload);
            Assert.Equal(Hex.Encode0x(hash), id.ToString());
            Assert.Equal(hash, id.ToArray());
            Assert.Equal(new Guid(hash.AsSpan(0, 16)), id.ToEventId());
            Span<byte> utf8 = stackalloc byte[ReadingId.HexLength];
            id.WriteHex(utf8);
            Assert.Equal(id.ToString(), Encoding.ASCII.GetString(utf8));
            Assert.True(ReadingId.TryParse(id.ToString(), out var parsed) && parsed == id && parsed.GetHashCode() == id.GetHashCode());
        });
    }

    [Fact]
    public void Equals_PayloadsDifferingInOneByte_AreDifferentIds()
    {
        var a = ReadingId.Of("{\"seq\":1}"u8);
        Assert.NotEqual(a, ReadingId.Of("{\"seq\":2}"u8));
        Assert.Equal(a, new ReadingId(a.ToArray()));
        Assert.False(ReadingId.TryParse("0x1234", out _));
    }
}
