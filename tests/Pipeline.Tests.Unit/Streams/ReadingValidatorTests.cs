using System.Text;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Core.Signals;
using Pipeline.Streams.Processing;
using V = Pipeline.Core.Signals.SignalCatalog.Vehicle;

namespace Pipeline.Tests.Unit.Streams;

/// <summary>The processors' decisions, as pure functions of messages, the registry and what was accepted before.</summary>
public sealed class ReadingValidatorTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.UtcNow;
    private readonly EthKey _key = EthKey.FromSeed("validator-device"u8);
    private readonly string _device;
    private long _offset;

    public ReadingValidatorTests() => _device = _key.Address.ToLowerHex();

    private Checked Message(long seq, double lat = 52.37, double speed = 50, DateTimeOffset? at = null, EthKey? signer = null, DeviceKind registered = DeviceKind.Vehicle, bool useRegistered = true)
    {
        var payload = ReadingWriter.Payload(_key.Address, seq, at ?? Now, DeviceKind.Vehicle, [new(V.Latitude, lat), new(V.Longitude, 4.89), new(V.Speed, speed)]);
        var envelope = EnvelopeParser.Encode(payload, (signer ?? _key).SignPersonal(Encoding.UTF8.GetBytes(payload)));
        var raw = new RawMessage("raw", 0, _offset++, _device, envelope, Now);
        var (reading, rejection) = ReadingValidator.Parse(raw, EnvelopeLimits.Default);
        rejection ??= ReadingValidator.CheckSigner(reading!, Secp256k1.Default);
        return rejection is not null
            ? new Checked(raw, reading, null, rejection, false)
            : ReadingValidator.CheckAlone(raw, reading!, useRegistered ? registered : null, PlausibilityLimits.Default);
    }

    [Fact]
    public void Decide_SameReadingTwice_SecondIsADuplicate()
    {
        var history = new ReadingValidator.DeviceHistory();
        var first = Message(1);
        var again = first with { Message = first.Message with { Offset = 99 } };
        Assert.Equal(Verdict.Accepted, ReadingValidator.Decide(first, history, PlausibilityLimits.Default).Verdict);
        Assert.Equal(Verdict.Duplicate, ReadingValidator.Decide(again, history, PlausibilityLimits.Default).Verdict);
    }

    [Fact]
    public void Decide_AnotherPayloadWithAnAcceptedSeq_IsASeqConflictOnTheDevicesStream()
    {
        var history = new ReadingValidator.DeviceHistory();
        ReadingValidator.Decide(Message(5), history, PlausibilityLimits.Default);
        var outcome = ReadingValidator.Decide(Message(5, speed: 51), history, PlausibilityLimits.Default);
        Assert.Equal((Verdict.RejectedSigned, ReasonCode.SeqConflict), (outcome.Verdict, outcome.Rejection!.Code));
        Assert.Equal(_device, outcome.Device);
    }

    [Fact]
    public void Decide_AJumpOfHundredsOfKilometresInSeconds_IsATeleport_AndTheReferenceFixStays()
    {
        var history = new ReadingValidator.DeviceHistory();
        ReadingValidator.Decide(Message(1, at: Now), history, PlausibilityLimits.Default);
        Assert.Equal(ReasonCode.Teleport, ReadingValidator.Decide(Message(2, lat: 56.87, at: Now.AddSeconds(5)), history, PlausibilityLimits.Default).Rejection?.Code);
        // Back where it really is: measured from the last accepted fix, not from the refused one.
        Assert.Equal(Verdict.Accepted, ReadingValidator.Decide(Message(3, lat: 52.3702, at: Now.AddSeconds(10)), history, PlausibilityLimits.Default).Verdict);
    }

    [Fact]
    public void Decide_ForgedOrUnregistered_IsADeadLetterOnly()
    {
        var history = new ReadingValidator.DeviceHistory();
        var forged = ReadingValidator.Decide(Message(1, signer: EthKey.FromSeed("someone-else"u8)), history, PlausibilityLimits.Default);
        Assert.Equal((Verdict.RejectedUnsigned, ReasonCode.SignerMismatch), (forged.Verdict, forged.Rejection!.Code));
        var stranger = ReadingValidator.Decide(Message(2, useRegistered: false), history, PlausibilityLimits.Default);
        Assert.Equal((Verdict.RejectedUnsigned, ReasonCode.UnknownDevice), (stranger.Verdict, stranger.Rejection!.Code));
        Assert.Empty(history.ProcessedIds);
    }

    [Fact]
    public void Decide_SignedButImplausible_IsRejectedOnTheDevicesStream()
    {
        var history = new ReadingValidator.DeviceHistory();
        Assert.Equal(ReasonCode.OutOfRange, ReadingValidator.Decide(Message(1, speed: 480), history, PlausibilityLimits.Default).Rejection?.Code);
        Assert.Equal(ReasonCode.Future, ReadingValidator.Decide(Message(2, at: Now.AddHours(1)), history, PlausibilityLimits.Default).Rejection?.Code);
        var wrongKind = ReadingValidator.Decide(Message(3, registered: DeviceKind.Weather), history, PlausibilityLimits.Default);
        Assert.Equal((Verdict.RejectedSigned, ReasonCode.Malformed), (wrongKind.Verdict, wrongKind.Rejection!.Code));
    }
}
