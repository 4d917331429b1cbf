using System.Text;
using System.Text.Json;
using Pipeline.Core.Crypto;

namespace Pipeline.Core.Envelope;

/// <summary>Writes payloads and signed envelopes as a device does: for the simulator, benchmarks and tests.</summary>
public static class ReadingWriter
{
    public static string Payload(EthAddress device, long seq, DateTimeOffset deviceTime, DeviceKind kind, IEnumerable<KeyValuePair<string, double>> signals, IEnumerable<string>? obd = null)
    {
        using var buffer = new MemoryStream(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("device"u8, device.ToLowerHex());
            writer.WriteNumber("seq"u8, seq);
            writer.WriteString("ts"u8, deviceTime.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture));
            writer.WriteString("kind"u8, kind.ToWire());
            writer.WriteStartObject("signals"u8);
            foreach (var (name, value) in signals) writer.WriteNumber(name, Math.Round(value, 6));
            writer.WriteEndObject();
            if (obd is not null)
            {
                writer.WriteStartArray("obd"u8);
                foreach (var response in obd) writer.WriteStringValue(response);
                writer.WriteEndArray();
            }
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    /// <summary>The envelope {"payload": …, "sig": …} of a payload signed (EIP-191) with the device's key.</summary>
    public static byte[] Sign(EthKey key, string payload) => EnvelopeParser.Encode(payload, key.SignPersonal(Encoding.UTF8.GetBytes(payload)));

    /// <summary>Keccak-256 of the payload bytes: the id the pipeline gives this reading.</summary>
    public static string IdOf(string payload) => Hex.Encode0x(Keccak256.Hash(Encoding.UTF8.GetBytes(payload)));
}
