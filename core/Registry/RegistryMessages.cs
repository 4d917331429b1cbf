using System.Globalization;
using System.Text;
using System.Text.Json;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;

namespace Pipeline.Core.Registry;

/// <summary>
/// "I, owner, register this device": the exact JSON text both the owner wallet and the device key sign (EIP-191).
/// <code>{"action":"register_device","device":"0x…","owner":"0x…","kind":"vehicle","metadata":{"make":"Volvo","model":"V40","year":"2015","firmware":"2.1"},"issuedAt":"2026-11-23T19:00:00Z"}</code>
/// Vehicles carry make, model, year and firmware; weather stations latitude, longitude, elevation (m) and model.
/// </summary>
public sealed record RegistrationMessage(EthAddress Device, EthAddress Owner, DeviceKind Kind, IReadOnlyDictionary<string, string> Metadata, DateTimeOffset IssuedAt)
{
    public const string Action = "register_device";

    public static readonly IReadOnlyDictionary<DeviceKind, string[]> RequiredMetadata = new Dictionary<DeviceKind, string[]>
    {
        [DeviceKind.Vehicle] = ["make", "model", "year", "firmware"],
        [DeviceKind.Weather] = ["latitude", "longitude", "elevation", "model"],
    };

    public string ToJson() => RegistryJson.Write(writer =>
    {
        writer.WriteString("action", Action);
        writer.WriteString("device", Device.ToLowerHex());
        writer.WriteString("owner", Owner.ToLowerHex());
        writer.WriteString("kind", Kind.ToWire());
        writer.WriteStartObject("metadata");
        foreach (var (key, value) in Metadata) writer.WriteString(key, value);
        writer.WriteEndObject();
        writer.WriteString("issuedAt", RegistryJson.Time(IssuedAt));
    });

    public static (RegistrationMessage? Message, Rejection? Rejection) Parse(string text) => RegistryJson.Parse(text, Action, root =>
    {
        var device = RegistryJson.Address(root, "device");
        var owner = RegistryJson.Address(root, "owner");
        if (!DeviceKinds.TryParse(RegistryJson.String(root, "kind"), out var kind)) throw new RegistryFormatException("kind must be \"vehicle\" or \"weather\".");
        if (!root.TryGetProperty("metadata", out var metadataElement) || metadataElement.ValueKind != JsonValueKind.Object)
            throw new RegistryFormatException("metadata must be an object.");
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var property in metadataElement.EnumerateObject())
        {
            if (!RequiredMetadata[kind].Contains(property.Name)) throw new RegistryFormatException($"metadata of a {kind.ToWire()} holds only {string.Join(", ", RequiredMetadata[kind])}; '{property.Name}' is not one of them.");
            metadata[property.Name] = property.Value.ValueKind switch
            {
                JsonValueKind.String => property.Value.GetString()!,
                JsonValueKind.Number => property.Value.GetDouble().ToString(CultureInfo.InvariantCulture),
                _ => throw new RegistryFormatException($"metadata.{property.Name} must be a string or a number."),
            };
        }
        ValidateMetadata(kind, metadata);
        return new RegistrationMessage(device, owner, kind, metadata, RegistryJson.IssuedAt(root));
    }, ["action", "device", "owner", "kind", "metadata", "issuedAt"]);

    private static void ValidateMetadata(DeviceKind kind, Dictionary<string, string> metadata)
    {
        foreach (var key in RequiredMetadata[kind])
        {
            if (!metadata.TryGetValue(key, out var value) || string.IsNullOrWhiteSpace(value)) throw new RegistryFormatException($"metadata.{key} is required for a {kind.ToWire()}.");
            if (value.Length > 64) throw new RegistryFormatException($"metadata.{key} is longer than 64 characters.");
        }
        if (kind == DeviceKind.Vehicle)
        {
            if (!int.TryParse(metadata["year"], NumberStyles.None, CultureInfo.InvariantCulture, out var year) || year is < 1950 or > 2100)
                throw new RegistryFormatException("metadata.year must be a model year between 1950 and 2100.");
            return;
        }
        Range("latitude", -90, 90);
        Range("longitude", -180, 180);
        Range("elevation", -500, 9000);

        void Range(string key, double min, double max)
        {
            if (!double.TryParse(metadata[key], NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
                throw new RegistryFormatException($"metadata.{key} must be a number between {min} and {max}.");
        }
    }
}

/// <summary>
/// "I hand this device to you" and "I take it": the text the current and the new owner both sign. The nonce is the
/// number of transfers so far, so a signed transfer cannot be replayed once ownership has moved on.
/// </summary>
public sealed record TransferMessage(EthAddress Device, EthAddress From, EthAddress To, int Nonce, DateTimeOffset IssuedAt)
{
    public const string Action = "transfer_device";

    public string ToJson() => RegistryJson.Write(writer =>
    {
        writer.WriteString("action", Action);
        writer.WriteString("device", Device.ToLowerHex());
        writer.WriteString("from", From.ToLowerHex());
        writer.WriteString("to", To.ToLowerHex());
        writer.WriteNumber("nonce", Nonce);
        writer.WriteString("issuedAt", RegistryJson.Time(IssuedAt));
    });

    public static (TransferMessage? Message, Rejection? Rejection) Parse(string text) => RegistryJson.Parse(text, Action, root =>
    {
        if (!root.TryGetProperty("nonce", out var nonce) || nonce.ValueKind != JsonValueKind.Number || !nonce.TryGetInt32(out var value) || value < 0)
            throw new RegistryFormatException("nonce must be the number of transfers so far (0 for the first).");
        return new TransferMessage(RegistryJson.Address(root, "device"), RegistryJson.Address(root, "from"), RegistryJson.Address(root, "to"), value, RegistryJson.IssuedAt(root));
    }, ["action", "device", "from", "to", "nonce", "issuedAt"]);
}

internal sealed class RegistryFormatException(string message, ReasonCode code = ReasonCode.Malformed) : Exception(message)
{
    public ReasonCode Code { get; } = code;
}

/// <summary>The strict JSON reading and writing the two registry messages share.</summary>
internal static class RegistryJson
{
    public const int MaxMessageBytes = 4096;

    public static string Write(Action<Utf8JsonWriter> body)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            body(writer);
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    public static (T? Message, Rejection? Rejection) Parse<T>(string text, string action, Func<JsonElement, T> read, string[] fields) where T : class
    {
        if (Encoding.UTF8.GetByteCount(text) > MaxMessageBytes) return (null, new Rejection(ReasonCode.TooLarge, $"The message is longer than {MaxMessageBytes} bytes."));
        try
        {
            using var document = JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = 4, AllowDuplicateProperties = false });
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new RegistryFormatException("The message is a JSON object.");
            if (CheckStrings(root) is { } unsafeText) return (null, unsafeText);
            foreach (var property in root.EnumerateObject())
            {
                if (!fields.Contains(property.Name)) return (null, new Rejection(ReasonCode.UnknownField, $"The message has no field '{property.Name}'; it holds {string.Join(", ", fields)}."));
            }
            if (String(root, "action") != action) throw new RegistryFormatException($"action must be \"{action}\".");
            return (read(root), null);
        }
        catch (RegistryFormatException e)
        {
            return (null, new Rejection(e.Code, e.Message));
        }
        catch (JsonException e)
        {
            return (null, new Rejection(ReasonCode.Malformed, "The message is not JSON: " + e.Message));
        }
        catch (InvalidOperationException)
        {
            // The duplicate-field check decodes every name, and System.Text.Json refuses "\udfff" and kin there.
            return (null, SafeText.Refuse("A field name", "an escaped unpaired surrogate"));
        }
    }

    /// <summary>Every property name and string value, checked before any is read: one rule for every field and metadata key and value.</summary>
    private static Rejection? CheckStrings(JsonElement element, string path = "")
    {
        var what = path.Length == 0 ? "The message" : $"The field '{path}'";
        try
        {
            switch (element.ValueKind)
            {
                case JsonValueKind.Object:
                    foreach (var property in element.EnumerateObject())
                    {
                        var field = path.Length == 0 ? property.Name : $"{path}.{property.Name}";
                        if ((SafeText.Check(property.Name, $"The field name '{field}'") ?? CheckStrings(property.Value, field)) is { } rejection) return rejection;
                    }
                    return null;
                case JsonValueKind.Array:
                    var index = 0;
                    foreach (var item in element.EnumerateArray())
                    {
                        if (CheckStrings(item, $"{path}[{index++}]") is { } rejection) return rejection;
                    }
                    return null;
                case JsonValueKind.String:
                    return SafeText.Check(element.GetString()!, what);
                default:
                    return null;
            }
        }
        catch (InvalidOperationException)
        {
            // System.Text.Json refuses to decode "\ud800" and kin, in names and values alike.
            return SafeText.Refuse(what, "an escaped unpaired surrogate");
        }
    }

    public static string String(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString()! : throw new RegistryFormatException($"{name} must be a string.");

    public static EthAddress Address(JsonElement root, string name) =>
        EthAddress.TryParse(String(root, name).AsSpan(), out var address)
            ? address
            : throw new RegistryFormatException($"{name} must be 0x followed by 40 hex digits.", ReasonCode.BadAddress);

    public static DateTimeOffset IssuedAt(JsonElement root) =>
        root.TryGetProperty("issuedAt", out var value) && value.ValueKind == JsonValueKind.String
            && Rfc3339.HasDateTimeAndOffset(Encoding.UTF8.GetBytes(value.GetString()!)) && value.TryGetDateTimeOffset(out var time)
            ? time.ToUniversalTime()
            : throw new RegistryFormatException("issuedAt must be an RFC 3339 time with an offset, such as 2026-11-23T19:00:00Z.");

    public static string Time(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}
