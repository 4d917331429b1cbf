using System.Buffers;
using System.Globalization;
using System.Numerics;
using System.Text.Json;
using System.Text.Json.Serialization;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;

namespace Pipeline.Rewards.Epochs;

/// <summary>
/// The one JSON form that policies, inputs and reward files are hashed in: camelCase names, object keys sorted by
/// ordinal, no whitespace, integers only (amounts as decimal strings, since they exceed 2^53), addresses in lower-case
/// hex. Anyone re-serialising the same data this way gets the same bytes and so the same keccak256.
/// </summary>
public static class CanonicalJson
{
    /// <summary>Options for reading and writing: strict about unknown members, so a misspelt policy field is an error.</summary>
    public static JsonSerializerOptions Options { get; } = CreateOptions();

    public static byte[] Serialize<T>(T value)
    {
        using var document = JsonSerializer.SerializeToDocument(value, Options);
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer)) WriteSorted(writer, document.RootElement);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>keccak256 of the canonical bytes, as 0x + 64 hex digits.</summary>
    public static string Hash<T>(T value) => Hex.Encode0x(Keccak256.Hash(Serialize(value)));

    private static void WriteSorted(Utf8JsonWriter writer, JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                writer.WriteStartObject();
                foreach (var property in element.EnumerateObject().OrderBy(p => p.Name, StringComparer.Ordinal))
                {
                    writer.WritePropertyName(property.Name);
                    WriteSorted(writer, property.Value);
                }
                writer.WriteEndObject();
                break;
            case JsonValueKind.Array:
                writer.WriteStartArray();
                foreach (var item in element.EnumerateArray()) WriteSorted(writer, item);
                writer.WriteEndArray();
                break;
            default:
                element.WriteTo(writer);
                break;
        }
    }

    private static JsonSerializerOptions CreateOptions()
    {
        var options = new JsonSerializerOptions
        {
            PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
            UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
            RespectRequiredConstructorParameters = true,
            RespectNullableAnnotations = true,
        };
        options.Converters.Add(new BigIntegerConverter());
        options.Converters.Add(new EthAddressConverter());
        options.Converters.Add(new JsonStringEnumConverter<DeviceKind>(JsonNamingPolicy.SnakeCaseLower));
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }

    /// <summary>A non-negative integer as a decimal string (JSON numbers lose precision above 2^53 in most readers).</summary>
    private sealed class BigIntegerConverter : JsonConverter<BigInteger>
    {
        public override BigInteger Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (reader.TokenType != JsonTokenType.String) throw new JsonException("An amount is a decimal string of digits, such as \"1000000000000000000\".");
            var text = reader.GetString()!;
            if (text.Length is 0 or > 78 || !text.All(char.IsAsciiDigit))
                throw new JsonException($"'{text}' is not an amount: a decimal string of up to 78 digits, no sign, no decimal point.");
            return BigInteger.Parse(text, NumberStyles.None, CultureInfo.InvariantCulture);
        }

        public override void Write(Utf8JsonWriter writer, BigInteger value, JsonSerializerOptions options) =>
            writer.WriteStringValue(value.ToString(CultureInfo.InvariantCulture));
    }

    private sealed class EthAddressConverter : JsonConverter<EthAddress>
    {
        public override EthAddress Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            var text = reader.TokenType == JsonTokenType.String ? reader.GetString()! : "";
            return EthAddress.TryParse(text.AsSpan(), out var address)
                ? address
                : throw new JsonException($"'{text}' is not an Ethereum address (0x + 40 hex digits, EIP-55 checksum if mixed case).");
        }

        public override void Write(Utf8JsonWriter writer, EthAddress value, JsonSerializerOptions options) => writer.WriteStringValue(value.ToLowerHex());

        public override EthAddress ReadAsPropertyName(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => Read(ref reader, typeToConvert, options);

        public override void WriteAsPropertyName(Utf8JsonWriter writer, EthAddress value, JsonSerializerOptions options) => writer.WritePropertyName(value.ToLowerHex());
    }
}
