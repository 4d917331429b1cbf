using Pipeline.Core.Envelope;

namespace Pipeline.Tests.Unit.Envelope;

public sealed class SafeTextTests
{
    public static TheoryData<char> Forbidden()
    {
        var data = new TheoryData<char>();
        for (var c = 0; c < 0x20; c++) data.Add((char)c);
        for (var c = 0x7F; c <= 0x9F; c++) data.Add((char)c);
        data.Add('\ud800');
        data.Add('\udbff');
        data.Add('\udc00');
        data.Add('\udfff');
        return data;
    }

    [Theory]
    [MemberData(nameof(Forbidden))]
    public void Check_EveryControlCharacterAndUnpairedSurrogate_IsBadEncoding_AndEscapesToPrintableText(char c)
    {
        var text = $"Vehicle{c}.Speed";
        Assert.Equal(7, SafeText.IndexOfForbidden(text));
        Assert.Equal(ReasonCode.BadEncoding, SafeText.Check(text, "A signal name")?.Code);

        var escaped = SafeText.Escape(text);
        Assert.Equal($"Vehicle\\u{(int)c:x4}.Speed", escaped);
        Assert.Equal(-1, SafeText.IndexOfForbidden(escaped));
    }

    [Theory]
    [InlineData("Vehicle.Speed")]
    [InlineData("Zürich ☂ 東京")]
    [InlineData("\ud83d\ude97 a car")]
    [InlineData("\ufffe\uffff\u00a0\u2028")]
    [InlineData("")]
    public void Check_PrintableTextAndSurrogatePairs_Pass(string text)
    {
        Assert.Equal(-1, SafeText.IndexOfForbidden(text));
        Assert.Null(SafeText.Check(text, "A name"));
        Assert.Same(text, SafeText.Escape(text));
    }

    [Fact]
    public void Quote_LongText_NeverCutsASurrogatePairInHalf()
    {
        var text = new string('a', 39) + "\ud83d\ude97" + "tail";
        var quoted = SafeText.Quote(text, 40);
        Assert.Equal(new string('a', 39) + "…", quoted);
        Assert.Equal(-1, SafeText.IndexOfForbidden(quoted));
    }

    [Fact]
    public void Rejection_QuotingAStrangersText_HoldsOnlyStorableCharacters()
    {
        var rejection = new Rejection(ReasonCode.UnknownSignal, "'\0\ud800' is not a vehicle signal");
        Assert.Equal("'\\u0000\\ud800' is not a vehicle signal", rejection.Detail);
    }
}
