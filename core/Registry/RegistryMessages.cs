using System.Globalization;
using System.Text;
using System.Text.Json;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;

namespace Pipeline.Core.Registry;

/// <summary>
/// The EIP-712 domain registry messages are signed for. Its name and chain id come from configuration (section
/// Network), so a message signed for one network is refused by every other; the version changes with the types.
/// </summary>
public static class RegistryDomain
{
    public const string DefaultName = "DePIN Telemetry";
    public const string Version = "1";

    /// <summary>anvil's chain id: the local chain a development network pays its rewards on.</summary>
    public const ulong DevChainId = 31337;

    public static Eip712Domain Dev { get; } = new(DefaultName, Version, DevChainId);
}

/// <summary>
/// "I, owner, register this device": EIP-712 typed data that both the owner wallet and the device key sign. Vehicles sign
/// <c>RegisterVehicle(address device,address owner,string make,string model,string year,string firmware,string issuedAt)</c>,
/// weather stations <c>RegisterWeatherStation(address device,address owner,string latitude,string longitude,string elevation,string model,string issuedAt)</c>.
/// </summary>
public sealed record RegistrationMessage(EthAddress Device, EthAddress Owner, DeviceKind Kind, IReadOnlyDictionary<string, string> Metadata, DateTimeOffset IssuedAt, Eip712Domain Domain)
{
    public static readonly IReadOnlyDictionary<DeviceKind, Eip712Type> Types = new Dictionary<DeviceKind, Eip712Type>
    {
        [DeviceKind.Vehicle] = RegistryJson.Type("RegisterVehicle", [new("device", Eip712Field.Address), new("owner", Eip712Field.Address)], "make", "model", "year", "firmware"),
        [DeviceKind.Weather] = RegistryJson.Type("RegisterWeatherStation", [new("device", Eip712Field.Address), new("owner", Eip712Field.Address)], "latitude", "longitude", "elevation", "model"),
    };

    /// <summary>The issuedAt text exactly as signed (the signature covers the string, not the instant).</summary>
    public string IssuedAtText { get; init; } = RegistryJson.Time(IssuedAt);

    public Eip712Type Type => Types[Kind];

    /// <summary>The metadata a kind carries, in the order its type lists them.</summary>
    public static IEnumerable<string> MetadataOf(DeviceKind kind) => Types[kind].Fields.Skip(2).SkipLast(1).Select(f => f.Name);

    private object[] Values => [Device, Owner, .. MetadataOf(Kind).Select(key => Metadata[key]), IssuedAtText];

    /// <summary>The EIP-712 digest both keys sign.</summary>
    public byte[] Digest() => Eip712.Digest(Domain, Type, Values);

    /// <summary>The typed data as <c>cast wallet sign --data</c> and eth_signTypedData_v4 take it: types, primaryType, domain, message.</summary>
    public string ToJson() => RegistryJson.Write(Domain, Type, Values);

    public string Sign(EthKey key) => Hex.Encode0x(key.SignHash(Digest()));

    public static (RegistrationMessage? Message, Rejection? Rejection) Parse(string typedData) => RegistryJson.Parse(typedData, [.. Types.Values], data =>
    {
        var kind = Types.Single(t => t.Value == data.Type).Key;
        var metadata = MetadataOf(kind).ToDictionary(key => key, data.Value<string>, StringComparer.Ordinal);
        ValidateMetadata(kind, metadata);
        var (issuedAt, issuedAtText) = data.IssuedAt();
        return new RegistrationMessage(data.Value<EthAddress>("device"), data.Value<EthAddress>("owner"), kind, metadata, issuedAt, data.Domain) { IssuedAtText = issuedAtText };
    });

    private static void ValidateMetadata(DeviceKind kind, Dictionary<string, string> metadata)
    {
        foreach (var (key, value) in metadata)
        {
            if (string.IsNullOrWhiteSpace(value)) throw new RegistryFormatException($"message.{key} is required for a {kind.ToWire()}.");
            if (value.Length > 64) throw new RegistryFormatException($"message.{key} is longer than 64 characters.");
        }
        if (kind == DeviceKind.Vehicle)
        {
            if (!int.TryParse(metadata["year"], NumberStyles.None, CultureInfo.InvariantCulture, out var year) || year is < 1950 or > 2100)
                throw new RegistryFormatException("message.year must be a model year between 1950 and 2100.");
            return;
        }
        Range("latitude", -90, 90);
        Range("longitude", -180, 180);
        Range("elevation", -500, 9000);

        void Range(string key, double min, double max)
        {
            if (!double.TryParse(metadata[key], NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
                throw new RegistryFormatException($"message.{key} must be a number between {min} and {max}.");
        }
    }
}

/// <summary>
/// "I hand this device to you" and "I take it": <c>TransferDevice(address device,address from,address to,uint256 nonce,string issuedAt)</c>,
/// signed by the current and the new owner. The nonce is the number of transfers so far, so a signed transfer cannot be
/// replayed once ownership has moved on.
/// </summary>
public sealed record TransferMessage(EthAddress Device, EthAddress From, EthAddress To, int Nonce, DateTimeOffset IssuedAt, Eip712Domain Domain)
{
    public static readonly Eip712Type Type = new("TransferDevice",
        new("device", Eip712Field.Address), new("from", Eip712Field.Address), new("to", Eip712Field.Address), new("nonce", Eip712Field.Uint256), new("issuedAt", Eip712Field.String));

    /// <summary>The issuedAt text exactly as signed.</summary>
    public string IssuedAtText { get; init; } = RegistryJson.Time(IssuedAt);

    private object[] Values => [Device, From, To, (ulong)Nonce, IssuedAtText];

    public byte[] Digest() => Eip712.Digest(Domain, Type, Values);

    public string ToJson() => RegistryJson.Write(Domain, Type, Values);

    public string Sign(EthKey key) => Hex.Encode0x(key.SignHash(Digest()));

    public static (TransferMessage? Message, Rejection? Rejection) Parse(string typedData) => RegistryJson.Parse(typedData, [Type], data =>
    {
        var nonce = data.Value<ulong>("nonce");
        if (nonce > int.MaxValue) throw new RegistryFormatException("message.nonce must be the number of transfers so far (0 for the first).");
        var (issuedAt, issuedAtText) = data.IssuedAt();
        return new TransferMessage(data.Value<EthAddress>("device"), data.Value<EthAddress>("from"), data.Value<EthAddress>("to"), (int)nonce, issuedAt, data.Domain) { IssuedAtText = issuedAtText };
    });
}

internal sealed class RegistryFormatException(string message, ReasonCode code = ReasonCode.Malformed) : Exception(message)
{
    public ReasonCode Code { get; } = code;
}

/// <summary>Typed data as read: its type, its domain, and the message's values in member order.</summary>
internal sealed record TypedData(Eip712Type Type, Eip712Domain Domain, IReadOnlyList<object> Values)
{
    public T Value<T>(string name) => (T)Values[Type.Fields.ToList().FindIndex(f => f.Name == name)];

    public (DateTimeOffset Time, string Text) IssuedAt()
    {
        var text = Value<string>("issuedAt");
        return RegistryJson.TryParseTime(text, out var time)
            ? (time, text)
            : throw new RegistryFormatException($"message.issuedAt must be an RFC 3339 time with an offset, such as {RegistryJson.Time(new DateTimeOffset(2026, 11, 23, 19, 0, 0, TimeSpan.Zero))}.");
    }
}

/// <summary>The strict reading and writing of EIP-712 typed data that the registry's messages share.</summary>
internal static class RegistryJson
{
    public const int MaxMessageBytes = 4096;

    private static readonly string[] Members = ["types", "primaryType", "domain", "message"];

    /// <summary>A registration type: the addresses, the kind's metadata as strings, issuedAt last.</summary>
    public static Eip712Type Type(string name, Eip712Field[] addresses, params string[] metadata) =>
        new(name, [.. addresses, .. metadata.Select(m => new Eip712Field(m, Eip712Field.String)), new("issuedAt", Eip712Field.String)]);

    public static string Write(Eip712Domain domain, Eip712Type type, IReadOnlyList<object> values)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteStartObject("types");
            foreach (var t in (Eip712Type[])[Eip712Domain.Type, type])
            {
                writer.WriteStartArray(t.Name);
                foreach (var field in t.Fields)
                {
                    writer.WriteStartObject();
                    writer.WriteString("name", field.Name);
                    writer.WriteString("type", field.Type);
                    writer.WriteEndObject();
                }
                writer.WriteEndArray();
            }
            writer.WriteEndObject();
            writer.WriteString("primaryType", type.Name);
            writer.WriteStartObject("domain");
            writer.WriteString("name", domain.Name);
            writer.WriteString("version", domain.Version);
            writer.WriteNumber("chainId", domain.ChainId);
            writer.WriteEndObject();
            writer.WriteStartObject("message");
            for (var i = 0; i < type.Fields.Count; i++)
            {
                switch (values[i])
                {
                    case EthAddress address: writer.WriteString(type.Fields[i].Name, address.ToLowerHex()); break;
                    case ulong number: writer.WriteNumber(type.Fields[i].Name, number); break;
                    default: writer.WriteString(type.Fields[i].Name, (string)values[i]); break;
                }
            }
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    public static (T? Message, Rejection? Rejection) Parse<T>(string text, IReadOnlyCollection<Eip712Type> types, Func<TypedData, T> read) where T : class
    {
        if (Encoding.UTF8.GetByteCount(text) > MaxMessageBytes) return (null, new Rejection(ReasonCode.TooLarge, $"The typed data is longer than {MaxMessageBytes} bytes."));
        try
        {
            // Nesting: the object, types, a type's member list, a member.
            using var document = JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = 4, AllowDuplicateProperties = false });
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new RegistryFormatException("The typed data is a JSON object with types, primaryType, domain and message.");
            if (CheckStrings(root) is { } unsafeText) return (null, unsafeText);
            foreach (var property in root.EnumerateObject())
            {
                if (!Members.Contains(property.Name)) return (null, new Rejection(ReasonCode.UnknownField, $"The typed data has no member '{property.Name}'; it holds {string.Join(", ", Members)}."));
            }
            var primary = String(root, "primaryType", "primaryType");
            var type = types.FirstOrDefault(t => t.Name == primary)
                ?? throw new RegistryFormatException($"primaryType must be {string.Join(" or ", types.Select(t => t.Name))}, not '{primary}'.");
            if (root.TryGetProperty("types", out var declared)) CheckTypes(declared, type);
            var domain = Domain(root);
            return (read(new TypedData(type, domain, Message(root, type))), null);
        }
        catch (RegistryFormatException e)
        {
            return (null, new Rejection(e.Code, e.Message));
        }
        catch (JsonException e)
        {
            return (null, new Rejection(ReasonCode.Malformed, "The typed data is not JSON: " + e.Message));
        }
        catch (InvalidOperationException)
        {
            // The duplicate-member check decodes every name, and System.Text.Json refuses "\udfff" and kin there.
            return (null, SafeText.Refuse("A member name", "an escaped unpaired surrogate"));
        }
    }

    /// <summary>Types may be left out (they are ours); given, they must be exactly ours, since the signature covers their encoding.</summary>
    private static void CheckTypes(JsonElement declared, Eip712Type type)
    {
        if (declared.ValueKind != JsonValueKind.Object) throw new RegistryFormatException("types must be an object of type name to members.");
        var seenPrimary = false;
        foreach (var property in declared.EnumerateObject())
        {
            var expected = property.Name == type.Name ? type : property.Name == Eip712Domain.Type.Name ? Eip712Domain.Type : null;
            if (expected is null) throw new RegistryFormatException($"types defines '{property.Name}', which {type.Name} does not use.");
            seenPrimary |= expected == type;
            var members = property.Value.ValueKind == JsonValueKind.Array ? property.Value.EnumerateArray().ToList() : [];
            var matches = members.Count == expected.Fields.Count && members.Zip(expected.Fields).All(pair =>
                pair.First.ValueKind == JsonValueKind.Object && pair.First.EnumerateObject().Count() == 2
                && pair.First.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String && name.GetString() == pair.Second.Name
                && pair.First.TryGetProperty("type", out var kind) && kind.ValueKind == JsonValueKind.String && kind.GetString() == pair.Second.Type);
            if (!matches) throw new RegistryFormatException($"types.{property.Name} must be {expected.Encoded}, member by member in that order.");
        }
        if (!seenPrimary) throw new RegistryFormatException($"types must define {type.Encoded}.");
    }

    private static Eip712Domain Domain(JsonElement root)
    {
        if (!root.TryGetProperty("domain", out var domain) || domain.ValueKind != JsonValueKind.Object)
            throw new RegistryFormatException("domain must be an object {name, version, chainId}; GET /v1/network returns this network's.");
        foreach (var property in domain.EnumerateObject())
        {
            if (property.Name is not ("name" or "version" or "chainId"))
                throw new RegistryFormatException($"The domain holds '{property.Name}'; this network's domain is name, version and chainId only (GET /v1/network).", ReasonCode.WrongNetwork);
        }
        return new Eip712Domain(String(domain, "name", "domain.name"), String(domain, "version", "domain.version"), Uint(domain, "chainId", "domain.chainId"));
    }

    /// <summary>The message's values in member order: exactly the type's members, each of its type.</summary>
    private static List<object> Message(JsonElement root, Eip712Type type)
    {
        if (!root.TryGetProperty("message", out var message) || message.ValueKind != JsonValueKind.Object)
            throw new RegistryFormatException($"message must be an object with {string.Join(", ", type.Fields.Select(f => f.Name))}.");
        foreach (var property in message.EnumerateObject())
        {
            if (!type.Fields.Any(f => f.Name == property.Name))
                throw new RegistryFormatException($"The message has no member '{property.Name}'; a {type.Name} holds {string.Join(", ", type.Fields.Select(f => f.Name))}.", ReasonCode.UnknownField);
        }
        return type.Fields.Select(field => field.Type switch
        {
            Eip712Field.Address => EthAddress.TryParse(String(message, field.Name, $"message.{field.Name}").AsSpan(), out var address)
                ? address
                : throw new RegistryFormatException($"message.{field.Name} must be 0x followed by 40 hex digits.", ReasonCode.BadAddress),
            Eip712Field.Uint256 => Uint(message, field.Name, $"message.{field.Name}"),
            _ => (object)String(message, field.Name, $"message.{field.Name}"),
        }).ToList();
    }

    private static string String(JsonElement element, string name, string path) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString()! : throw new RegistryFormatException($"{path} must be a string.");

    /// <summary>A uint256 as the tools write it: a JSON number or a string of decimal digits (within 64 bits here).</summary>
    private static ulong Uint(JsonElement element, string name, string path)
    {
        if (element.TryGetProperty(name, out var value))
        {
            if (value.ValueKind == JsonValueKind.Number && value.TryGetUInt64(out var number)) return number;
            if (value.ValueKind == JsonValueKind.String && ulong.TryParse(value.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out number)) return number;
        }
        throw new RegistryFormatException($"{path} must be a non-negative integer (a number or a string of decimal digits).");
    }

    /// <summary>Every member name and string value, checked before any is read: one rule for every field and metadata key and value.</summary>
    private static Rejection? CheckStrings(JsonElement element, string path = "")
    {
        var what = path.Length == 0 ? "The typed data" : $"The member '{path}'";
        try
        {
            switch (element.ValueKind)
            {
                case JsonValueKind.Object:
                    foreach (var property in element.EnumerateObject())
                    {
                        var member = path.Length == 0 ? property.Name : $"{path}.{property.Name}";
                        if ((SafeText.Check(property.Name, $"The member name '{member}'") ?? CheckStrings(property.Value, member)) is { } rejection) return rejection;
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

    public static bool TryParseTime(string text, out DateTimeOffset time)
    {
        time = default;
        var utf8 = Encoding.UTF8.GetBytes(text);
        if (!Rfc3339.HasDateTimeAndOffset(utf8) || utf8.AsSpan().IndexOfAny("\"\\"u8) >= 0) return false;
        // The JSON reader's ISO 8601 rules, as for a reading's ts.
        var reader = new Utf8JsonReader([(byte)'"', .. utf8, (byte)'"']);
        if (!reader.Read() || !reader.TryGetDateTimeOffset(out time)) return false;
        time = time.ToUniversalTime();
        return true;
    }

    public static string Time(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}
