using System.Text;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;

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
}
