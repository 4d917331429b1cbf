using System.Buffers;
using System.Text.Json;
using System.Text.Unicode;
using Pipeline.Core.Crypto;
using Pipeline.Core.Signals;

namespace Pipeline.Core.Envelope;

/// <summary>Either a signed reading or the reason it could not be read.</summary>
public readonly record struct EnvelopeResult(SignedReading? Reading, Rejection? Rejection)
{
    public static implicit operator EnvelopeResult(Rejection rejection) => new(null, rejection);
}

/// <summary>
/// Parses the signed reading envelope <c>{"payload": "&lt;JSON text&gt;", "sig": "0x…"}</c> with strict types and
/// hard limits. Any input yields a reading or a rejection with a reason code, never an exception.
/// </summary>
public static class EnvelopeParser
{
    private const int SignatureHexLength = 2 + 2 * PersonalSign.SignatureSize;
    private const string TimeExpected = "an RFC 3339 time with an offset, such as " + Rfc3339.Example;

    public static EnvelopeResult Parse(ReadOnlyMemory<byte> envelope, EnvelopeLimits limits)
    {
        if (envelope.Length > limits.MaxReadingBytes)
            return new Rejection(ReasonCode.TooLarge, $"The reading has {envelope.Length} bytes; the limit is {limits.MaxReadingBytes}.");
        if (!Utf8.IsValid(envelope.Span))
            return new Rejection(ReasonCode.BadEncoding, "The reading is not valid UTF-8.");
        try
        {
            return ParseEnvelope(envelope, limits);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or ArgumentException)
        {
            return new Rejection(ReasonCode.Malformed, $"Not a reading envelope: {e.Message}");
        }
    }

    private static EnvelopeResult ParseEnvelope(ReadOnlyMemory<byte> envelope, EnvelopeLimits limits)
    {
        var reader = new Utf8JsonReader(envelope.Span, new JsonReaderOptions { MaxDepth = limits.MaxDepth });
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            return new Rejection(ReasonCode.Malformed, "A reading is a JSON object {\"payload\": \"…\", \"sig\": \"0x…\"}.");

        byte[]? payload = null;
        byte[]? signature = null;
        var signatureReadable = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("payload"u8))
            {
                if (payload is not null) return Duplicate("payload");
                reader.Read();
                if (reader.TokenType != JsonTokenType.String) return WrongType("payload", "a string holding the signed JSON text");
                if (!TryCopyUtf8(ref reader, out payload)) return SafeText.Refuse("The payload", "an escaped unpaired surrogate");
            }
            else if (reader.ValueTextEquals("sig"u8))
            {
                if (signature is not null) return Duplicate("sig");
                reader.Read();
                if (reader.TokenType != JsonTokenType.String) return WrongType("sig", "a string 0x + 130 hex");
                signature = new byte[PersonalSign.SignatureSize];
                var hex = reader.ValueSpan;
                signatureReadable = !reader.ValueIsEscaped && hex.Length == SignatureHexLength && hex.StartsWith("0x"u8) && Hex.TryDecode(hex[2..], signature);
            }
            else
            {
                return ReadText(ref reader, "A field name", out var name)
                    ?? new Rejection(ReasonCode.UnknownField, $"The envelope has no field '{SafeText.Quote(name)}'; it holds only payload and sig.");
            }
        }
        // Reading on past the object makes trailing content after it a syntax error.
        while (reader.Read()) { }

        if (payload is null) return Missing("payload");
        if (signature is null) return Missing("sig");
        if (!signatureReadable)
            return new Rejection(ReasonCode.BadSignature, "sig must be 0x followed by 130 hex digits (r‖s‖v).");

        var content = ParsePayload(payload, limits);
        if (content.Rejection is { } rejection) return rejection;
        return new EnvelopeResult(new SignedReading(envelope, payload, signature, content.Payload!), null);
    }

    private readonly record struct PayloadResult(ReadingPayload? Payload, Rejection? Rejection)
    {
        public static implicit operator PayloadResult(Rejection rejection) => new(null, rejection);
    }

    private static PayloadResult ParsePayload(byte[] payload, EnvelopeLimits limits)
    {
        var reader = new Utf8JsonReader(payload, new JsonReaderOptions { MaxDepth = limits.MaxDepth });
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            return new Rejection(ReasonCode.Malformed, "The payload is a JSON object with device, seq, ts, kind and signals.");

        EthAddress? device = null;
        long? seq = null;
        DateTimeOffset? ts = null;
        DeviceKind? kind = null;
        Dictionary<string, double>? signals = null;
        List<string>? obd = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("device"u8))
            {
                if (device is not null) return Duplicate("device");
                reader.Read();
                if (reader.TokenType != JsonTokenType.String) return WrongType("device", "a string 0x + 40 hex");
                // Unescaped (the usual case), the address is parsed where it lies.
                var address = default(EthAddress);
                if (reader.ValueIsEscaped ? !TryCopyUtf8(ref reader, out var deviceText) || !EthAddress.TryParse(deviceText, out address) : !EthAddress.TryParse(reader.ValueSpan, out address))
                    return new Rejection(ReasonCode.BadAddress, "device must be 0x followed by 40 hex digits (EIP-55 checksum if mixed case).");
                device = address;
            }
            else if (reader.ValueTextEquals("seq"u8))
            {
                if (seq is not null) return Duplicate("seq");
                reader.Read();
                if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out var value) || value < 0)
                    return WrongType("seq", "a non-negative integer");
                seq = value;
            }
            else if (reader.ValueTextEquals("ts"u8))
            {
                if (ts is not null) return Duplicate("ts");
                reader.Read();
                if (reader.TokenType != JsonTokenType.String) return WrongType("ts", TimeExpected);
                if (reader.ValueSpan.Length > limits.MaxStringLength) return TooLong("ts", limits);
                if (reader.ValueIsEscaped || !Rfc3339.HasDateTimeAndOffset(reader.ValueSpan) || !reader.TryGetDateTimeOffset(out var time))
                    return WrongType("ts", TimeExpected);
                ts = time.ToUniversalTime();
            }
            else if (reader.ValueTextEquals("kind"u8))
            {
                if (kind is not null) return Duplicate("kind");
                reader.Read();
                if (reader.TokenType != JsonTokenType.String || !DeviceKinds.TryParse(reader.ValueSpan, out var parsed))
                    return WrongType("kind", "\"vehicle\" or \"weather\"");
                kind = parsed;
            }
            else if (reader.ValueTextEquals("signals"u8))
            {
                if (signals is not null) return Duplicate("signals");
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartObject) return WrongType("signals", "an object of signal name to number");
                signals = new Dictionary<string, double>(8, StringComparer.Ordinal);
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    if (reader.ValueSpan.Length > limits.MaxStringLength) return TooLong("a signal name", limits);
                    // A catalog name (the usual case) needs no string of its own nor a check: the catalog's are safe.
                    var name = "";
                    if ((reader.ValueIsEscaped || !SignalCatalog.TryGetName(reader.ValueSpan, out name)) && ReadText(ref reader, "A signal name", out name) is { } badName) return badName;
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.Number || !reader.TryGetDouble(out var value) || !double.IsFinite(value))
                        return WrongType($"signals.{name}", "a finite number");
                    if (!signals.TryAdd(name, value)) return Duplicate($"signals.{name}");
                    if (signals.Count > limits.MaxSignals)
                        return new Rejection(ReasonCode.TooLarge, $"More than {limits.MaxSignals} signals in one reading.");
                }
            }
            else if (reader.ValueTextEquals("obd"u8))
            {
                if (obd is not null) return Duplicate("obd");
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartArray) return WrongType("obd", "an array of hex strings such as \"410C1AF8\"");
                obd = [];
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType != JsonTokenType.String) return WrongType("obd[]", "a hex string such as \"410C1AF8\"");
                    if (reader.ValueSpan.Length > limits.MaxStringLength) return TooLong("an OBD response", limits);
                    if (ReadText(ref reader, "An OBD response", out var response) is { } badResponse) return badResponse;
                    obd.Add(response);
                    if (obd.Count > limits.MaxObdResponses)
                        return new Rejection(ReasonCode.TooLarge, $"More than {limits.MaxObdResponses} OBD responses in one reading.");
                }
            }
            else
            {
                return ReadText(ref reader, "A field name", out var name)
                    ?? new Rejection(ReasonCode.UnknownField, $"The payload has no field '{SafeText.Quote(name)}'; it holds device, seq, ts, kind, signals and obd.");
            }
        }
        while (reader.Read()) { }

        if (device is null) return Missing("device");
        if (seq is null) return Missing("seq");
        if (ts is null) return Missing("ts");
        if (kind is null) return Missing("kind");
        signals ??= [];
        obd ??= [];
        if (signals.Count == 0 && obd.Count == 0)
            return new Rejection(ReasonCode.Malformed, "A reading carries at least one signal or OBD response.");
        return new PayloadResult(new ReadingPayload(device.Value, seq.Value, ts.Value, kind.Value, signals, obd), null);
    }

    /// <summary>The string's UTF-8 bytes, unescaped; false when an escape names half a surrogate pair, which has no UTF-8 form.</summary>
    private static bool TryCopyUtf8(ref Utf8JsonReader reader, out byte[] utf8)
    {
        if (!reader.ValueIsEscaped)
        {
            utf8 = reader.ValueSpan.ToArray();
            return true;
        }
        // Unescaped into a rented buffer, then copied once at its exact length (a payload is always escaped: it is JSON in a string).
        var buffer = ArrayPool<byte>.Shared.Rent(reader.ValueSpan.Length);
        try
        {
            utf8 = buffer.AsSpan(0, reader.CopyString(buffer)).ToArray();
            return true;
        }
        catch (InvalidOperationException)
        {
            utf8 = [];
            return false;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>A string (or property name) the payload's sender wrote, or bad_encoding when it holds what <see cref="SafeText"/> forbids.</summary>
    private static Rejection? ReadText(ref Utf8JsonReader reader, string what, out string text)
    {
        try
        {
            text = reader.GetString()!;
        }
        catch (InvalidOperationException)
        {
            // System.Text.Json refuses to decode "\ud800" and kin: there is no string to check.
            text = "";
            return SafeText.Refuse(what, "an escaped unpaired surrogate");
        }
        return SafeText.Check(text, what);
    }
    private static Rejection Duplicate(string field) => new(ReasonCode.Malformed, $"The field '{field}' appears twice.");
    private static Rejection Missing(string field) => new(ReasonCode.Malformed, $"The field '{field}' is missing.");
    private static Rejection WrongType(string field, string expected) => new(ReasonCode.Malformed, $"The field '{field}' must be {expected}.");
    private static Rejection TooLong(string what, EnvelopeLimits limits) => new(ReasonCode.TooLarge, $"{char.ToUpperInvariant(what[0])}{what[1..]} is longer than {limits.MaxStringLength} characters.");

    /// <summary>Encodes an envelope around a payload and its signature, as a device does.</summary>
    public static byte[] Encode(string payload, ReadOnlySpan<byte> signature)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("payload"u8, payload);
            writer.WriteString("sig"u8, Hex.Encode0x(signature));
            writer.WriteEndObject();
        }
        return buffer.ToArray();
    }
}
