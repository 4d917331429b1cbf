using System.Text;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;

namespace Pipeline.Tests.Unit.Envelope;

public sealed class BatchParserTests
{
    private static readonly EthKey Device = EthKey.FromSeed("batch-parser-tests"u8);

    private static string Reading(long seq) => Encoding.UTF8.GetString(EnvelopeParserTests.Envelope(Device, EnvelopeParserTests.Payload(Device, seq)));

    private static BatchResult Parse(string body, BatchFormat format, EnvelopeLimits? limits = null) =>
        BatchParser.Parse(Encoding.UTF8.GetBytes(body), format, limits ?? EnvelopeLimits.Default);

    [Fact]
    public void Parse_SingleEnvelope_IsOneItem()
    {
        var result = Parse("  " + Reading(1) + "\n", BatchFormat.Json);
        Assert.Null(result.Error);
        Assert.Equal(1, Assert.Single(result.Items).Reading!.Content.Seq);
    }

    [Fact]
    public void Parse_Array_KeepsOrderAndRefusesOnlyTheBadItem()
    {
        var result = Parse($"[{Reading(1)}, 42, {Reading(2)}, {{\"payload\":\"x\",\"sig\":\"0x\"}}, {Reading(3)}]", BatchFormat.Json);
        Assert.Null(result.Error);
        Assert.Equal(5, result.Items.Count);
        Assert.Equal([1L, 2L, 3L], result.Items.Where(i => i.Reading is not null).Select(i => i.Reading!.Content.Seq));
        Assert.Equal(ReasonCode.Malformed, result.Items[1].Rejection!.Code);
        Assert.Equal(ReasonCode.BadSignature, result.Items[3].Rejection!.Code);
        Assert.Equal(Reading(2), Encoding.UTF8.GetString(result.Items[2].Raw.Span));
    }

    [Fact]
    public void Parse_NdJson_SkipsBlankLinesAndRefusesOnlyTheBadLine()
    {
        var result = Parse($"{Reading(1)}\r\n\n{{broken\n{Reading(2)}", BatchFormat.NdJson);
        Assert.Null(result.Error);
        Assert.Equal(3, result.Items.Count);
        Assert.Equal(ReasonCode.Malformed, result.Items[1].Rejection!.Code);
        Assert.Equal(2, result.Items[2].Reading!.Content.Seq);
    }

    [Theory]
    [InlineData("", ReasonCode.Malformed)]
    [InlineData("[]", ReasonCode.Malformed)]
    [InlineData("\"text\"", ReasonCode.Malformed)]
    [InlineData("[{\"payload\":1}, {", ReasonCode.Malformed)]
    [InlineData("[[[[[[[[[[1]]]]]]]]]]", ReasonCode.Malformed)]
    public void Parse_UnreadableArray_FailsAsAWhole(string body, ReasonCode expected)
    {
        Assert.Equal(expected, Parse(body, BatchFormat.Json).Error?.Code);
    }

    [Fact]
    public void Parse_TooManyReadings_FailsAsAWhole()
    {
        var limits = EnvelopeLimits.Default with { MaxBatchReadings = 2 };
        Assert.Equal(ReasonCode.TooLarge, Parse($"[{Reading(1)},{Reading(2)},{Reading(3)}]", BatchFormat.Json, limits).Error?.Code);
        Assert.Equal(ReasonCode.TooLarge, Parse($"{Reading(1)}\n{Reading(2)}\n{Reading(3)}", BatchFormat.NdJson, limits).Error?.Code);
    }

    [Fact]
    public void Parse_BodyOverTheByteLimit_FailsAsAWhole()
    {
        var limits = EnvelopeLimits.Default with { MaxBatchBytes = 100 };
        Assert.Equal(ReasonCode.TooLarge, Parse($"[{Reading(1)}]", BatchFormat.Json, limits).Error?.Code);
    }

    [Fact]
    public void Parse_ArrayItemWithInvalidUtf8_IsRefusedAlone()
    {
        var body = Encoding.UTF8.GetBytes($"[{Reading(1)},{Reading(2)}]");
        body[Encoding.UTF8.GetByteCount($"[{Reading(1)}") - 3] = 0xFF;
        var result = BatchParser.Parse(body, BatchFormat.Json, EnvelopeLimits.Default);
        Assert.Null(result.Error);
        Assert.Equal(ReasonCode.BadEncoding, result.Items[0].Rejection?.Code);
        Assert.Null(result.Items[1].Rejection);
    }

    [Fact]
    public void ReasonCodes_HaveSnakeCaseWireNamesThatRoundTrip()
    {
        Assert.Equal("bad_signature", ReasonCode.BadSignature.ToWire());
        Assert.Equal("seq_conflict", ReasonCode.SeqConflict.ToWire());
        foreach (var code in ReasonCodes.All)
        {
            Assert.True(ReasonCodes.TryParse(code.ToWire(), out var parsed));
            Assert.Equal(code, parsed);
            Assert.False(string.IsNullOrWhiteSpace(code.Describe()));
        }
    }
}
