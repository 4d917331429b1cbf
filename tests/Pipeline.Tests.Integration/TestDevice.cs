using System.Text;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Core.Registry;
using Pipeline.Streams.Registry;

namespace Pipeline.Tests.Integration;

/// <summary>A device with its own key that signs readings with rising seq, as a dongle would.</summary>
public sealed class TestDevice(string seed, DeviceKind kind = DeviceKind.Vehicle)
{
    public EthKey Key { get; } = EthKey.FromSeed(Encoding.UTF8.GetBytes(seed + Guid.NewGuid()));
    public string Address => Key.Address.ToLowerHex();
    public DeviceKind Kind { get; } = kind;
    public long Seq { get; private set; }

    /// <summary>The next reading: its id (keccak of the payload) and the envelope bytes.</summary>
    public (string Id, byte[] Envelope, string Payload) Next(IEnumerable<KeyValuePair<string, double>>? signals = null, DateTimeOffset? at = null, IEnumerable<string>? obd = null)
    {
        Seq++;
        var payload = ReadingWriter.Payload(Key.Address, Seq, at ?? DateTimeOffset.UtcNow, Kind,
            signals ?? [new("Vehicle.Speed", 40 + Seq % 20)], obd);
        return (ReadingWriter.IdOf(payload), ReadingWriter.Sign(Key, payload), payload);
    }

    /// <summary>This device's registration by <paramref name="owner"/> (a new wallet by default), signed by both, for POST /v1/devices.</summary>
    public RegisterDeviceRequest Registration(EthKey? owner = null)
    {
        owner ??= EthKey.Generate();
        var metadata = Kind == DeviceKind.Vehicle
            ? new Dictionary<string, string> { ["make"] = "Volvo", ["model"] = "V40", ["year"] = "2015", ["firmware"] = "2.1" }
            : new Dictionary<string, string> { ["latitude"] = "53.35", ["longitude"] = "-6.26", ["elevation"] = "71", ["model"] = "WS-2000" };
        var message = new RegistrationMessage(Key.Address, owner.Address, Kind, metadata, DateTimeOffset.UtcNow).ToJson();
        return new RegisterDeviceRequest(message, Sign(owner, message), Sign(Key, message));
    }

    public static string Sign(EthKey key, string message) => Hex.Encode0x(key.SignPersonal(Encoding.UTF8.GetBytes(message)));
}
