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

    private static string Transfer(string issuedAt = "2026-11-23T19:00:00Z", string extra = "") =>
        $$"""{"action":"transfer_device","device":"{{Device.ToLowerHex()}}","from":"{{From.ToLowerHex()}}","to":"{{To.ToLowerHex()}}",{{extra}}"nonce":0,"issuedAt":"{{issuedAt}}"}""";

    [Fact]
    public void Transfer_RoundTripsThroughItsJson()
    {
        var (message, rejection) = TransferMessage.Parse(Transfer());
        Assert.Null(rejection);
        Assert.Equal(new TransferMessage(Device, From, To, 0, new DateTimeOffset(2026, 11, 23, 19, 0, 0, TimeSpan.Zero)), message);
        Assert.Equal(Transfer(), message!.ToJson());
    }

    [Fact]
    public void DuplicateField_IsMalformed_SoSignersAndRegistryCannotReadDifferentRecipients()
    {
        // The signed text names two recipients: a reader taking the first and a parser taking the last would disagree.
        var (message, rejection) = TransferMessage.Parse(Transfer(extra: $"\"to\":\"{Other.ToLowerHex()}\","));
        Assert.Null(message);
        Assert.Equal(ReasonCode.Malformed, rejection!.Code);
    }

    [Theory]
    [InlineData("2026-11-23T19:00:00")]
    [InlineData("2026-11-23")]
    [InlineData("2026-11-23 19:00:00")]
    public void IssuedAt_WithoutAnOffset_IsMalformed_ForItWouldMeanAnotherInstantOnEachServer(string issuedAt)
    {
        var (message, rejection) = TransferMessage.Parse(Transfer(issuedAt));
        Assert.Null(message);
        Assert.Equal(ReasonCode.Malformed, rejection!.Code);
    }

    private static string Registration(string make = "Volvo", string makeKey = "make") =>
        $$"""{"action":"register_device","device":"{{Device.ToLowerHex()}}","owner":"{{From.ToLowerHex()}}","kind":"vehicle","metadata":{"{{makeKey}}":"{{make}}","model":"V40","year":"2015","firmware":"2.1"},"issuedAt":"2026-11-23T19:00:00Z"}""";

    [Theory]
    [InlineData("Vol\\u0000vo", "make", "The field 'metadata.make' holds U+0000")]
    [InlineData("Volvo\\u001b[31m", "make", "The field 'metadata.make' holds U+001B")]
    [InlineData("Vol\\ud800vo", "make", "The field 'metadata.make' holds an escaped unpaired surrogate")]
    [InlineData("Volvo", "ma\\u0000ke", "The field name 'metadata.ma\\u0000ke' holds U+0000")]
    [InlineData("Volvo", "ma\\udfffke", "A field name holds an escaped unpaired surrogate")]
    public void Registration_WithAControlCharacterOrUnpairedSurrogateAnywhere_IsBadEncoding_Issue10(string make, string makeKey, string expected)
    {
        var (message, rejection) = RegistrationMessage.Parse(Registration(make, makeKey));
        Assert.Null(message);
        Assert.Equal(ReasonCode.BadEncoding, rejection!.Code);
        Assert.StartsWith(expected, rejection.Detail);
    }

    [Fact]
    public void IssuedAt_WithANumericOffset_IsTheSameInstantInUtc()
    {
        var (message, _) = TransferMessage.Parse(Transfer("2026-11-23T20:30:00+01:30"));
        Assert.Equal(new DateTimeOffset(2026, 11, 23, 19, 0, 0, TimeSpan.Zero), message!.IssuedAt);
    }
}
