using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Core.Registry;

namespace Pipeline.Tests.Unit.Registry;

public sealed class RegistryMessagesTests
{
    private static readonly EthAddress Device = EthKey.FromSeed("registry-device"u8).Address;
    private static readonly EthAddress From = EthKey.FromSeed("registry-from"u8).Address;
    private static readonly EthAddress To = EthKey.FromSeed("registry-to"u8).Address;
    private static readonly EthAddress Other = EthKey.FromSeed("registry-other"u8).Address;
    private static readonly DateTimeOffset Issued = new(2026, 11, 23, 19, 0, 0, TimeSpan.Zero);
    private static readonly Dictionary<string, string> Car = new() { ["make"] = "Volvo", ["model"] = "V40", ["year"] = "2015", ["firmware"] = "2.1" };

    private static TransferMessage Transfer(string issuedAt = "2026-11-23T19:00:00Z") =>
        new(Device, From, To, 0, Issued, RegistryDomain.Dev) { IssuedAtText = issuedAt };

    private static RegistrationMessage Registration(IReadOnlyDictionary<string, string>? metadata = null) =>
        new(Device, From, DeviceKind.Vehicle, metadata ?? Car, Issued, RegistryDomain.Dev);

    [Fact]
    public void Transfer_RoundTripsThroughItsTypedData()
    {
        var typedData = Transfer().ToJson();
        Assert.StartsWith("""{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"}],"TransferDevice":""", typedData);
        var (message, rejection) = TransferMessage.Parse(typedData);
        Assert.Null(rejection);
        Assert.Equal(Transfer(), message);
        Assert.Equal(typedData, message!.ToJson());
    }

    [Fact]
    public void Registration_OfEitherKind_RoundTripsThroughItsTypedData()
    {
        var station = new RegistrationMessage(Device, From, DeviceKind.Weather, new Dictionary<string, string> { ["latitude"] = "53.35", ["longitude"] = "-6.26", ["elevation"] = "71", ["model"] = "WS" }, Issued, RegistryDomain.Dev);
        foreach (var registration in new[] { Registration(), station })
        {
            var (parsed, rejection) = RegistrationMessage.Parse(registration.ToJson());
            Assert.Null(rejection);
            Assert.Equal((registration.Kind, registration.Device, registration.Owner, registration.Domain), (parsed!.Kind, parsed.Device, parsed.Owner, parsed.Domain));
            Assert.Equal(registration.Metadata, parsed.Metadata);
            Assert.Equal(registration.Digest(), parsed.Digest());
        }
    }

    [Fact]
    public void TypedData_WithoutTypesOrWithAChainIdString_IsTheSameMessage()
    {
        // ethers takes the types without EIP712Domain, wallets write chainId either way: the digest is the same.
        var typedData = Transfer().ToJson();
        var withoutTypes = typedData[..typedData.IndexOf("\"types\"", StringComparison.Ordinal)] + typedData[(typedData.IndexOf("\"primaryType\"", StringComparison.Ordinal))..];
        var chainIdText = typedData.Replace("\"chainId\":31337", "\"chainId\":\"31337\"", StringComparison.Ordinal);
        Assert.Equal(Transfer().Digest(), TransferMessage.Parse(withoutTypes).Message!.Digest());
        Assert.Equal(Transfer().Digest(), TransferMessage.Parse(chainIdText).Message!.Digest());
    }

    [Theory]
    [InlineData("\"TransferDevice\":[{\"name\":\"device\"", "\"TransferDevice\":[{\"name\":\"nonce\",\"type\":\"uint256\"},{\"name\":\"device\"", ReasonCode.Malformed)]
    [InlineData("\"primaryType\":\"TransferDevice\"", "\"primaryType\":\"RegisterVehicle\"", ReasonCode.Malformed)]
    [InlineData("\"chainId\":31337", "\"chainId\":31337,\"verifyingContract\":\"0x0000000000000000000000000000000000000001\"", ReasonCode.WrongNetwork)]
    [InlineData("\"chainId\":31337", "\"chainId\":-1", ReasonCode.Malformed)]
    [InlineData("\"nonce\":0", "\"nonce\":0,\"memo\":\"hi\"", ReasonCode.UnknownField)]
    [InlineData("\"nonce\":0", "\"nonce\":\"0x00\"", ReasonCode.Malformed)]
    [InlineData("\"primaryType\"", "\"action\":\"transfer_device\",\"primaryType\"", ReasonCode.UnknownField)]
    public void TypedData_NotExactlyOurs_IsRefusedWithReason(string find, string replace, ReasonCode expected)
    {
        var typedData = Transfer().ToJson();
        Assert.Contains(find, typedData);
        var (message, rejection) = TransferMessage.Parse(typedData.Replace(find, replace, StringComparison.Ordinal));
        Assert.Null(message);
        Assert.Equal(expected, rejection!.Code);
    }

    [Fact]
    public void DuplicateMember_IsMalformed_SoSignersAndRegistryCannotReadDifferentRecipients()
    {
        // The signed data names two recipients: a wallet showing the first and a parser taking the last would disagree.
        var typedData = Transfer().ToJson().Replace("\"nonce\":0", $"\"to\":\"{Other.ToLowerHex()}\",\"nonce\":0", StringComparison.Ordinal);
        var (message, rejection) = TransferMessage.Parse(typedData);
        Assert.Null(message);
        Assert.Equal(ReasonCode.Malformed, rejection!.Code);
    }

    [Theory]
    [InlineData("2026-11-23T19:00:00")]
    [InlineData("2026-11-23")]
    [InlineData("2026-11-23 19:00:00")]
    public void IssuedAt_WithoutAnOffset_IsMalformed_ForItWouldMeanAnotherInstantOnEachServer(string issuedAt)
    {
        var (message, rejection) = TransferMessage.Parse(Transfer(issuedAt).ToJson());
        Assert.Null(message);
        Assert.Equal(ReasonCode.Malformed, rejection!.Code);
    }

    [Fact]
    public void IssuedAt_WithANumericOffset_IsTheSameInstantInUtc_AndTheSignedTextIsKept()
    {
        var (message, _) = TransferMessage.Parse(Transfer("2026-11-23T20:30:00+01:30").ToJson());
        Assert.Equal(Issued, message!.IssuedAt);
        Assert.Equal("2026-11-23T20:30:00+01:30", message.IssuedAtText);
        Assert.Equal(Transfer("2026-11-23T20:30:00+01:30").Digest(), message.Digest());
        Assert.NotEqual(Transfer().Digest(), message.Digest());
    }

    [Theory]
    [InlineData("\"Vol\\u0000vo\"", null, "The member 'message.make' holds U+0000")]
    [InlineData("\"Volvo\\u001b[31m\"", null, "The member 'message.make' holds U+001B")]
    [InlineData("\"Vol\\ud800vo\"", null, "The member 'message.make' holds an escaped unpaired surrogate")]
    [InlineData(null, "\"ma\\u0000ke\"", "The member name 'message.ma\\u0000ke' holds U+0000")]
    [InlineData(null, "\"ma\\udfffke\"", "A member name holds an escaped unpaired surrogate")]
    public void Registration_WithAControlCharacterOrUnpairedSurrogateAnywhere_IsBadEncoding_Issue10(string? make, string? makeKey, string expected)
    {
        var typedData = Registration().ToJson();
        if (make is not null) typedData = typedData.Replace("\"Volvo\"", make, StringComparison.Ordinal);
        if (makeKey is not null) typedData = typedData.Replace("\"make\":\"Volvo\"", makeKey + ":\"Volvo\"", StringComparison.Ordinal);
        var (message, rejection) = RegistrationMessage.Parse(typedData);
        Assert.Null(message);
        Assert.Equal(ReasonCode.BadEncoding, rejection!.Code);
        Assert.StartsWith(expected, rejection.Detail);
    }

    [Fact]
    public void Registration_WithoutAMetadataMember_IsMalformed()
    {
        var (message, rejection) = RegistrationMessage.Parse(Registration().ToJson().Replace(",\"firmware\":\"2.1\"", "", StringComparison.Ordinal));
        Assert.Null(message);
        Assert.Equal(ReasonCode.Malformed, rejection!.Code);
        Assert.Contains("message.firmware", rejection.Detail);
    }
}
