using System.Text;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;

namespace Pipeline.Tests.Unit.Envelope;

public sealed class EnvelopeParserTests
{
    private static readonly EthKey Device = EthKey.FromSeed("envelope-parser-tests"u8);
    private static readonly EnvelopeLimits Limits = EnvelopeLimits.Default;

    internal static string Payload(EthKey device, long seq = 1, string? signals = null, string extra = "") =>
        $$"""{"device":"{{device.Address.ToLowerHex()}}","seq":{{seq}},"ts":"2026-11-23T19:00:00.123Z","kind":"vehicle","signals":{{signals ?? """{"Vehicle.Speed":54.2}"""}}{{extra}}}""";

    internal static byte[] Envelope(EthKey device, string payload) =>
        EnvelopeParser.Encode(payload, device.SignPersonal(Encoding.UTF8.GetBytes(payload)));

    private static EnvelopeResult Parse(string json) => EnvelopeParser.Parse(Encoding.UTF8.GetBytes(json), Limits);
    private static EnvelopeResult Parse(byte[] json) => EnvelopeParser.Parse(json, Limits);

    [Fact]
    public void Parse_ValidEnvelope_ReadsEveryFieldAndTheExactSignedBytes()
    {
        var payload = Payload(Device, seq: 1042, signals: """{"Vehicle.Speed":54.2,"Vehicle.CurrentLocation.Latitude":52.37}""", extra: ""","obd":["410C1AF8"]""");
        var result = Parse(Envelope(Device, payload));

        var reading = Assert.IsType<SignedReading>(result.Reading);
        Assert.Null(result.Rejection);
        Assert.Equal(payload, Encoding.UTF8.GetString(reading.Payload));
        Assert.Equal(Device.Address, reading.Content.Device);
        Assert.Equal(1042, reading.Content.Seq);
        Assert.Equal(new DateTimeOffset(2026, 11, 23, 19, 0, 0, 123, TimeSpan.Zero), reading.Content.DeviceTime);
        Assert.Equal(DeviceKind.Vehicle, reading.Content.Kind);
        Assert.Equal(54.2, reading.Content.Signals["Vehicle.Speed"]);
        Assert.Equal(["410C1AF8"], reading.Content.Obd);
        Assert.Equal(Hex.Encode0x(Keccak256.Hash(reading.Payload)), reading.Id);
        Assert.Equal(SignatureCheck.Valid, reading.TryRecoverSigner(out var signer));
        Assert.Equal(Device.Address, signer);
    }

    [Fact]
    public void Parse_PayloadWithEscapes_SignsTheUnescapedText()
    {
        var payload = Payload(Device, signals: """{"Vehicle.Speed":1,"Zürich.Ärger":2}""");
        var json = Encoding.UTF8.GetString(Envelope(Device, payload));
        Assert.Contains("\\u0022", json); // the writer escapes the quotes inside payload…
        Assert.Contains("\\u00FC", json, StringComparison.OrdinalIgnoreCase); // …and non-ASCII letters
        var reading = Parse(json).Reading!;
        Assert.Equal(payload, Encoding.UTF8.GetString(reading.Payload));
        Assert.Equal(SignatureCheck.Valid, reading.TryRecoverSigner(out var signer));
        Assert.Equal(Device.Address, signer);
    }

    [Theory]
    [InlineData("""[1]""", ReasonCode.Malformed)]
    [InlineData("""{"payload":"{}"}""", ReasonCode.Malformed)]
    [InlineData("""{"sig":"0x00"}""", ReasonCode.Malformed)]
    [InlineData("""{"payload":1,"sig":"0x00"}""", ReasonCode.Malformed)]
    [InlineData("""{"payload":"{}","sig":"0x00"}""", ReasonCode.BadSignature)]
    [InlineData("""{"payload":"{}","sig":"0x00","extra":true}""", ReasonCode.UnknownField)]
    [InlineData("""{"payload":"{}","payload":"{}","sig":"0x00"}""", ReasonCode.Malformed)]
    [InlineData("""{"payload":"{}","sig":"0x00"} trailing""", ReasonCode.Malformed)]
    [InlineData("""{"payload":"{}","sig":""", ReasonCode.Malformed)]
    [InlineData("", ReasonCode.Malformed)]
    public void Parse_BadEnvelope_IsRejectedWithReason(string json, ReasonCode expected)
    {
        Assert.Equal(expected, Parse(json).Rejection?.Code);
    }

    public static TheoryData<string, ReasonCode> BadPayloads => new()
    {
        { """{"device":"0x12","seq":1,"ts":"2026-11-23T19:00:00Z","kind":"vehicle","signals":{"Vehicle.Speed":1}}""", ReasonCode.BadAddress },
        { """{"device":"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD","seq":1,"ts":"2026-11-23T19:00:00Z","kind":"vehicle","signals":{"Vehicle.Speed":1}}""", ReasonCode.BadAddress },
        { """{"device":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","seq":"1","ts":"2026-11-23T19:00:00Z","kind":"vehicle","signals":{"Vehicle.Speed":1}}""", ReasonCode.Malformed },
        { """{"device":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","seq":-1,"ts":"2026-11-23T19:00:00Z","kind":"vehicle","signals":{"Vehicle.Speed":1}}""", ReasonCode.Malformed },
        { """{"device":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","seq":1.5,"ts":"2026-11-23T19:00:00Z","kind":"vehicle","signals":{"Vehicle.Speed":1}}""", ReasonCode.Malformed },
        { """{"device":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","seq":1,"ts":"yesterday","kind":"vehicle","signals":{"Vehicle.Speed":1}}""", ReasonCode.Malformed },
        // Without an offset the instant would depend on the processing host's zone.
        { """{"device":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","seq":1,"ts":"2026-11-23T19:00:00","kind":"vehicle","signals":{"Vehicle.Speed":1}}""", ReasonCode.Malformed },
        { """{"device":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","seq":1,"ts":"2026-11-23","kind":"vehicle","signals":{"Vehicle.Speed":1}}""", ReasonCode.Malformed },
        { """{"device":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","seq":1,"ts":"2026-11-23T19:00:00.123+0100","kind":"vehicle","signals":{"Vehicle.Speed":1}}""", ReasonCode.Malformed },
        { """{"device":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","seq":1,"ts":"2026-11-23T19:00:00Z","kind":"boat","signals":{"Vehicle.Speed":1}}""", ReasonCode.Malformed },
        { """{"device":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","seq":1,"ts":"2026-11-23T19:00:00Z","kind":"vehicle","signals":{"Vehicle.Speed":"fast"}}""", ReasonCode.Malformed },
        { """{"device":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","seq":1,"ts":"2026-11-23T19:00:00Z","kind":"vehicle","signals":{"Vehicle.Speed":1,"Vehicle.Speed":2}}""", ReasonCode.Malformed },
        { """{"device":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","seq":1,"ts":"2026-11-23T19:00:00Z","kind":"vehicle","signals":{}}""", ReasonCode.Malformed },
        { """{"device":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","seq":1,"ts":"2026-11-23T19:00:00Z","kind":"vehicle","signals":{"Vehicle.Speed":{"nested":1}}}""", ReasonCode.Malformed },
        { """{"device":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","seq":1,"ts":"2026-11-23T19:00:00Z","kind":"vehicle","signals":{"Vehicle.Speed":1},"obd":[12]}""", ReasonCode.Malformed },
        { """{"device":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","seq":1,"ts":"2026-11-23T19:00:00Z","kind":"vehicle","signals":{"Vehicle.Speed":1},"firmware":"1.0"}""", ReasonCode.UnknownField },
        { """{"seq":1,"ts":"2026-11-23T19:00:00Z","kind":"vehicle","signals":{"Vehicle.Speed":1}}""", ReasonCode.Malformed },
        { """not json""", ReasonCode.Malformed },
        { """{"device":"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed","seq":1,"ts":"2026-11-23T19:00:00Z","kind":"vehicle","signals":{"a":{"b":{"c":{"d":1}}}}}""", ReasonCode.Malformed },
    };

    [Theory]
    [MemberData(nameof(BadPayloads))]
    public void Parse_BadPayload_IsRejectedWithReason(string payload, ReasonCode expected)
    {
        Assert.Equal(expected, Parse(Envelope(Device, payload)).Rejection?.Code);
    }

    [Fact]
    public void Parse_OverTheLimits_IsTooLarge()
    {
        var manySignals = "{" + string.Join(",", Enumerable.Range(0, Limits.MaxSignals + 1).Select(i => $"\"s{i}\":1")) + "}";
        Assert.Equal(ReasonCode.TooLarge, Parse(Envelope(Device, Payload(Device, signals: manySignals))).Rejection?.Code);

        var longName = "{\"" + new string('x', Limits.MaxStringLength + 1) + "\":1}";
        Assert.Equal(ReasonCode.TooLarge, Parse(Envelope(Device, Payload(Device, signals: longName))).Rejection?.Code);

        var manyObd = ",\"obd\":[" + string.Join(",", Enumerable.Repeat("\"410D20\"", Limits.MaxObdResponses + 1)) + "]";
        Assert.Equal(ReasonCode.TooLarge, Parse(Envelope(Device, Payload(Device, extra: manyObd))).Rejection?.Code);

        var huge = "{\"payload\":\"" + new string('a', Limits.MaxReadingBytes) + "\",\"sig\":\"0x\"}";
        Assert.Equal(ReasonCode.TooLarge, Parse(huge).Rejection?.Code);
    }

    [Fact]
    public void Parse_InvalidUtf8_IsBadEncoding()
    {
        var bytes = Envelope(Device, Payload(Device));
        bytes[15] = 0xC3; // a lead byte followed by ASCII
        Assert.Equal(ReasonCode.BadEncoding, Parse(bytes).Rejection?.Code);
    }

    [Fact]
    public void Parse_LoneSurrogateEscapeInPayload_IsRejectedNotThrown()
    {
        var json = """{"payload":"{\"device\":\"\ud800\"}","sig":"0x""" + new string('1', 130) + "\"}";
        Assert.NotNull(Parse(json).Rejection);
    }

    /// <summary>Payload texts as a device signs them: each string holds a character PostgreSQL cannot store or no name should hold.</summary>
    public static TheoryData<string, string> PoisonPayloads => new()
    {
        { Payload(Device, signals: """{"\u0000":1}"""), "A signal name holds U+0000" },
        { Payload(Device, extra: ""","obd":["\u0000"]"""), "An OBD response holds U+0000" },
        { Payload(Device, signals: """{"Vehicle.Speed\u001f":1}"""), "A signal name holds U+001F" },
        { Payload(Device, signals: "{\"Vehicle.Speed\u007f\":1}"), "A signal name holds U+007F" },
        { Payload(Device, extra: ""","obd":["410D\u0085"]"""), "An OBD response holds U+0085" },
        { Payload(Device, signals: """{"\ud800":1}"""), "A signal name holds an escaped unpaired surrogate" },
        { Payload(Device, extra: ""","obd":["\udc00"]"""), "An OBD response holds an escaped unpaired surrogate" },
        { Payload(Device, extra: ""","\u0000":1"""), "A field name holds U+0000" },
    };

    [Theory]
    [MemberData(nameof(PoisonPayloads))]
    public void Parse_PayloadStringWithAControlCharacterOrUnpairedSurrogate_IsBadEncodingWithAStorableDetail_Issue10(string payload, string expected)
    {
        var rejection = Parse(Envelope(Device, payload)).Rejection;

        Assert.Equal(ReasonCode.BadEncoding, rejection?.Code);
        Assert.StartsWith(expected, rejection!.Detail);
        Assert.Contains("Remove it and sign again", rejection.Detail);
        Assert.Equal(-1, SafeText.IndexOfForbidden(rejection.Detail));
    }

    [Fact]
    public void Parse_EnvelopeWithAControlCharacterOrUnpairedSurrogate_IsBadEncoding_Issue10()
    {
        var sig = "0x" + new string('1', 130);
        Assert.Equal(ReasonCode.BadEncoding, Parse($$"""{"payload":"{}","sig":"{{sig}}","\u0000":1}""").Rejection?.Code);
        Assert.Equal(ReasonCode.BadEncoding, Parse($$"""{"payload":"{\"a\":1}\ud800","sig":"{{sig}}"}""").Rejection?.Code);
    }

    [Fact]
    public void Parse_SurrogatePairsAndOtherUnicode_AreNotPoison()
    {
        // A pair is a character like any other: the processors refuse an unknown name, the parser has no reason to.
        var reading = Parse(Envelope(Device, Payload(Device, signals: """{"Vehicle.Speed":1,"\ud83d\ude97 Zürich \ufffe":2}""")));
        Assert.Null(reading.Rejection);
        Assert.Contains("\U0001F697 Zürich \uFFFE", reading.Reading!.Content.Signals.Keys);
    }

    [Fact]
    public void Parse_RandomBytesAndMutations_NeverThrow()
    {
        var random = new Random(42);
        var valid = Envelope(Device, Payload(Device, extra: ""","obd":["410C1AF8"]"""));
        for (var i = 0; i < 20_000; i++)
        {
            byte[] input;
            if (i % 2 == 0)
            {
                input = (byte[])valid.Clone();
                for (var flips = random.Next(1, 4); flips > 0; flips--) input[random.Next(input.Length)] = (byte)random.Next(256);
                if (random.Next(4) == 0) input = input[..random.Next(input.Length)];
            }
            else
            {
                input = new byte[random.Next(0, 64)];
                random.NextBytes(input);
            }
            var result = EnvelopeParser.Parse(input, Limits);
            Assert.True(result.Reading is not null ^ result.Rejection is not null);
        }
    }
}
