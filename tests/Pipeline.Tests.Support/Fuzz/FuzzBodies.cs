using System.Globalization;
using System.Text;
using CsCheck;

namespace Pipeline.Tests.Support.Fuzz;

/// <summary>
/// Hostile bodies for everything that parses what a stranger sends: structure-aware generators (the real JSON skeletons
/// of a reading, a batch and a registry request, with fields mutated — huge numbers, NaN-like strings, deep nesting,
/// control characters, lone surrogates, long strings, duplicate and unknown keys, wrong types, truncation) and plain
/// random bytes. Everything is bytes, so invalid UTF-8 reaches the parsers as it would from a socket.
/// </summary>
public static class FuzzBodies
{
    private static readonly string[] VehicleSignals =
    [
        "Vehicle.Speed", "Vehicle.CurrentLocation.Latitude", "Vehicle.CurrentLocation.Longitude",
        "Vehicle.Powertrain.CombustionEngine.Speed", "Vehicle.Powertrain.CombustionEngine.ECT", "Vehicle.OBD.EngineLoad",
        "temperature", "humidity", "pressure", "wind_speed",
    ];

    private static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    private static Gen<byte[]> Text(params string[] choices) => Gen.OneOf(choices.Select(Utf8).ToArray());

    /// <summary>Random hex digits from one 64-bit draw, stretched by SplitMix64: a draw per digit made generation the fuzz's bottleneck.</summary>
    private static Gen<string> HexDigits(int count) => Gen.ULong.Select(seed => string.Create(count, seed, (digits, state) =>
    {
        for (var i = 0; i < digits.Length; i++)
        {
            var z = state += 0x9E3779B97F4A7C15;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
            digits[i] = "0123456789abcdef"[(int)((z ^ (z >> 31)) & 15)];
        }
    }));

    /// <summary>Numbers no parser should trip on: beyond double and long, negative zero, exponents, leading zeros, bare NaN.</summary>
    public static readonly Gen<byte[]> HostileNumber = Gen.OneOf(
        Text("1e309", "-1e309", "1e-400", "9223372036854775808", "-9223372036854775809", "18446744073709551616", "-0", "-0.0",
            "0.1e1", "1E+2", "01", "1.", ".5", "+1", "0x10", "NaN", "Infinity", "-Infinity", "1_000", "4.9e-324", "1.7976931348623157e308"),
        Gen.Long.Select(l => Utf8(l.ToString(CultureInfo.InvariantCulture))),
        Gen.Double.Select(d => Utf8(d.ToString("R", CultureInfo.InvariantCulture))),
        Gen.Char['0', '9'].Array[1, 400].Select(d => Utf8(new string(d))));

    /// <summary>JSON strings (quotes included) that carry what a parser must refuse or survive.</summary>
    public static readonly Gen<byte[]> HostileString = Gen.OneOf(
        Text("\"NaN\"", "\"Infinity\"", "\"-Infinity\"", "\"1e309\"", "\"0x\"", "\"null\"", "\"\"", "\" \"", "\"\\\"\"", "\"\\\\\"",
            "\"\\ud83d\\ude00\"", "\"😀\"", "\"\u00e9\u0301\"", "\"\u202e\"", "\"\ufeff\"", "\"\\udc00\\ud800\"", "\"\\u0000\"", "\"a\\u0000b\""),
        Gen.Int[0, 20_000].Select(n => Utf8("\"" + new string('a', n) + "\"")),
        Gen.Int[0, 0x9f].Select(c => Utf8($"\"x\\u{c:x4}y\"")),
        Gen.Int[0xd800, 0xdfff].Select(c => Utf8($"\"\\u{c:x4}\"")),
        Gen.Byte[0, 0x1f].Select(b => new[] { (byte)'"', b, (byte)'"' }),
        Gen.OneOf<byte[]>([0xED, 0xA0, 0x80], [0xC0, 0x80], [0xFF], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82], [0x80], [0xC2, 0x85])
            .Select(b => (byte[])[(byte)'"', .. b, (byte)'"']),
        Gen.Char.Array[0, 40].Select(c => Utf8(JsonQuote(new string(c)))));

    /// <summary>Arrays and objects nested deeper than any limit, balanced or not.</summary>
    public static readonly Gen<byte[]> DeepNesting = Gen.Select(Gen.Int[1, 3000], Gen.Bool, Gen.Bool, (depth, asArray, balanced) =>
        Utf8(Repeat(asArray ? "[" : "{\"a\":", depth) + "1" + (balanced ? Repeat(asArray ? "]" : "}", depth) : "")));

    public static readonly Gen<byte[]> WrongType = Text("null", "true", "false", "[]", "{}", "[1,2]", "{\"a\":1}", "[\"0x\"]", "{\"payload\":\"{}\"}");

    public static readonly Gen<byte[]> HostileValue = Gen.Frequency(
        (4, HostileNumber), (6, HostileString), (2, DeepNesting), (3, WrongType));

    /// <summary>Member names: unknown, near misses of the real ones, escaped forms of the real ones, and hostile strings.</summary>
    private static readonly Gen<byte[]> HostileKey = Gen.OneOf(
        Text("\"firmware\"", "\"Payload\"", "\"payload \"", "\"\\u0070ayload\"", "\"\\u0073ig\"", "\"\\u0064evice\"", "\"se\\u0071\"",
            "\"__proto__\"", "\"constructor\"", "\"\"", "\"salt\"", "\"verifyingContract\""),
        HostileString);

    /// <summary>
    /// A JSON object of the given members, each value from its generator, then up to three mutations: a value replaced by
    /// a hostile one, a member repeated, removed, added under a hostile name, or its name written with escapes.
    /// </summary>
    public static Gen<byte[]> Object(params (string Name, Gen<byte[]> Value)[] members)
    {
        Gen<List<(byte[] Key, byte[] Value)>> skeleton = Gen.Const(() => new List<(byte[], byte[])>());
        foreach (var (name, value) in members)
            skeleton = skeleton.SelectMany(list => value.Select(v => { list.Add((Utf8(JsonQuote(name)), v)); return list; }));
        var mutation = Gen.Select(Gen.Int[0, 6], Gen.Int[0, 1000], HostileValue, HostileKey, (kind, at, value, key) => (kind, at, value, key));
        return Gen.Select(skeleton, Gen.Frequency((3, Gen.Int[0, 0]), (1, Gen.Int[1, 3])).SelectMany(n => mutation.Array[n]), (list, mutations) =>
        {
            foreach (var (kind, at, value, key) in mutations)
            {
                var i = list.Count == 0 ? 0 : at % list.Count;
                switch (kind)
                {
                    case 0 or 1 when list.Count > 0: list[i] = (list[i].Key, value); break;
                    case 2 when list.Count > 0: list.Insert(i, list[i]); break;
                    case 3 when list.Count > 0: list.RemoveAt(i); break;
                    case 4: list.Insert(i, (key, value)); break;
                    case 5 when list.Count > 0: list[i] = (Utf8("\"" + EscapeAll(Encoding.UTF8.GetString(list[i].Key[1..^1])) + "\""), list[i].Value); break;
                    default: list.Insert(i, (key, list.Count > 0 ? list[i].Value : value)); break;
                }
            }
            var json = new List<byte> { (byte)'{' };
            for (var m = 0; m < list.Count; m++)
            {
                if (m > 0) json.Add((byte)',');
                json.AddRange(list[m].Key);
                json.Add((byte)':');
                json.AddRange(list[m].Value);
            }
            json.Add((byte)'}');
            return json.ToArray();
        });
    }

    private static readonly Gen<byte[]> Address = HexDigits(40).Select(h => Utf8($"\"0x{h}\""));

    /// <summary>The time the fuzzed messages are judged at: most of their times lie within a day of it.</summary>
    public static readonly DateTimeOffset Now = new(2026, 11, 23, 19, 0, 0, TimeSpan.Zero);

    private static readonly Gen<byte[]> Time = Gen.Frequency((3, Gen.Int[-86_000, 86_000]), (1, Gen.Int[-200_000_000, 200_000_000])).Select(s =>
        Utf8("\"" + Now.AddSeconds(s).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture) + "\""));

    private static readonly Gen<byte[]> Signals = Gen.Select(Gen.Int[0, VehicleSignals.Length - 1], Gen.Int[1, 4], Gen.Double[-1000, 10_000], Gen.Int[0, 70], (first, count, value, extra) =>
    {
        var pairs = Enumerable.Range(first, count).Select(i => (VehicleSignals[i % VehicleSignals.Length], value + i))
            .Concat(Enumerable.Range(0, extra > 64 ? extra : 0).Select(i => ($"x{i}", (double)i)));
        return Utf8("{" + string.Join(",", pairs.Distinct().Select(p => $"{JsonQuote(p.Item1)}:{p.Item2.ToString("R", CultureInfo.InvariantCulture)}")) + "}");
    });

    private static readonly Gen<byte[]> Obd = Gen.Select(Gen.OneOf("410C1AF8", "410D32", "41057B", "4104FF", "41A600010203", "41", "4", "ZZ", "410c1af8"), Gen.Int[1, 40],
        (response, count) => Utf8("[" + string.Join(",", Enumerable.Repeat(JsonQuote(response), count > 33 ? count : count % 3 + 1)) + "]"));

    /// <summary>A reading's payload: the real fields with real-looking values, then mutated.</summary>
    public static readonly Gen<byte[]> Payload = Object(
        ("device", Address), ("seq", Gen.Long[0, 1_000_000_000_000].Select(s => Utf8(s.ToString(CultureInfo.InvariantCulture)))),
        ("ts", Time), ("kind", Text("\"vehicle\"", "\"weather\"")), ("signals", Signals), ("obd", Obd));

    private static readonly Gen<byte[]> Signature = Gen.Frequency(
        (8, HexDigits(130).Select(h => Utf8($"\"0x{h}\""))),
        (1, HexDigits(130).Select(h => Utf8($"\"{EscapeAll("0x" + h)}\""))),
        (1, HexDigits(128).Select(h => Utf8($"\"0x{h}\""))),
        (1, HexDigits(130).Select(h => Utf8($"\"0X{h.ToUpperInvariant()}\""))));

    /// <summary>The payload as the envelope carries it: a JSON string, escaped minimally or character by character.</summary>
    private static readonly Gen<byte[]> PayloadString = Gen.Select(Payload, Gen.Int[0, 9], (payload, style) => style switch
    {
        0 => Utf8("\"" + EscapeAll(Encoding.UTF8.GetString(payload)) + "\""),
        _ => QuoteBytes(payload),
    });

    /// <summary>One signed-reading envelope <c>{"payload": "…", "sig": "0x…"}</c>, mutated.</summary>
    public static readonly Gen<byte[]> Envelope = Object(("payload", PayloadString), ("sig", Signature));

    /// <summary>A request body for POST /v1/readings and its format: one envelope, a JSON array or NDJSON, then perhaps cut or corrupted.</summary>
    public static readonly Gen<(byte[] Body, bool NdJson)> ReadingsBody = Gen.Frequency(
        (3, Envelope.Select(e => (e, false))),
        (3, Gen.Frequency((6, Envelope), (1, HostileValue)).Array[1, 8].Select(items => (Join("[", ",", "]", items), false))),
        (2, Envelope.Array[1, 8].SelectMany(items => Gen.OneOf("\n", "\r\n", "\n\n").Select(separator => (Join("", separator, "", items), true)))),
        (1, Gen.Int[1_001, 1_100].Select(n => (Join("[", ",", "]", Enumerable.Repeat("{}"u8.ToArray(), n)), false))),
        (2, Gen.Byte.Array[0, 512].SelectMany(bytes => Gen.Bool.Select(ndjson => (bytes, ndjson)))),
        (1, Gen.Frequency((3, Text("{", "}", "[", "]", ",", ":", "\"payload\"", "\"sig\"", "\n")), (1, HostileValue)).Array[0, 60]
            .SelectMany(tokens => Gen.Bool.Select(ndjson => (Join("", "", "", tokens), ndjson)))))
        .SelectMany(body => Corrupt(body.Item1).Select(corrupted => (corrupted, body.Item2)));

    private static readonly Gen<byte[]> Domain = Object(
        ("name", Text("\"DePIN Telemetry\"")), ("version", Text("\"1\"")), ("chainId", Gen.OneOf(Text("31337", "\"31337\""), HostileNumber)));

    private static Gen<byte[]> TypeMembers(params (string Name, string Type)[] members) =>
        Gen.Const(Utf8("[" + string.Join(",", members.Select(m => $"{{\"name\":\"{m.Name}\",\"type\":\"{m.Type}\"}}")) + "]"));

    private static readonly Gen<byte[]> RegisterVehicle = Object(
        ("types", Object(("EIP712Domain", TypeMembers(("name", "string"), ("version", "string"), ("chainId", "uint256"))),
            ("RegisterVehicle", TypeMembers(("device", "address"), ("owner", "address"), ("make", "string"), ("model", "string"), ("year", "string"), ("firmware", "string"), ("issuedAt", "string"))))),
        ("primaryType", Text("\"RegisterVehicle\"")), ("domain", Domain),
        ("message", Object(("device", Address), ("owner", Address), ("make", Text("\"Volvo\"")), ("model", Text("\"V40\"")),
            ("year", Gen.OneOf(Text("\"2015\"", "\"1949\"", "\"02015\""), HostileString)), ("firmware", Text("\"2.1\"")), ("issuedAt", Time))));

    private static readonly Gen<byte[]> RegisterWeatherStation = Object(
        ("primaryType", Text("\"RegisterWeatherStation\"")), ("domain", Domain),
        ("message", Object(("device", Address), ("owner", Address), ("latitude", Gen.OneOf(Text("\"53.35\"", "\"NaN\"", "\"1e309\"", "\"-90.0000001\""), HostileString)),
            ("longitude", Text("\"-6.26\"")), ("elevation", Text("\"12\"")), ("model", Text("\"WS-1\"")), ("issuedAt", Time))));

    private static readonly Gen<byte[]> TransferDevice = Object(
        ("primaryType", Text("\"TransferDevice\"")), ("domain", Domain),
        ("message", Object(("device", Address), ("from", Address), ("to", Address), ("nonce", Gen.OneOf(Text("0", "\"0\"", "2147483648", "-1", "1.5"), HostileNumber)), ("issuedAt", Time))));

    /// <summary>EIP-712 typed data for a registration or a transfer, mutated, perhaps cut or corrupted.</summary>
    public static readonly Gen<byte[]> TypedData = Gen.Frequency(
        (4, RegisterVehicle), (2, RegisterWeatherStation), (3, TransferDevice), (1, HostileValue), (1, Gen.Byte.Array[0, 300])).SelectMany(Corrupt);

    /// <summary>A body for POST /v1/devices (or a transfer): the typed data and two signatures, mutated.</summary>
    public static readonly Gen<byte[]> RegistryBody = Gen.Frequency(
        (8, Object(("typedData", TypedData), ("ownerSignature", Signature), ("deviceSignature", Signature))),
        (2, Object(("typedData", TypedData), ("fromSignature", Signature), ("toSignature", Signature))),
        (1, Gen.Byte.Array[0, 300])).SelectMany(Corrupt);

    /// <summary>Mostly the body as it is; sometimes cut short, a byte changed, random bytes put in, or a stretch taken out.</summary>
    public static Gen<byte[]> Corrupt(byte[] body) => Gen.Frequency(
        (14, Gen.Const(body)),
        (2, Gen.Int[0, Math.Max(0, body.Length - 1)].Select(cut => body[..cut])),
        (1, Gen.Select(Gen.Int[0, Math.Max(0, body.Length - 1)], Gen.Byte, (at, b) => body.Length == 0 ? (byte[])[b] : [.. body[..at], b, .. body[(at + 1)..]])),
        (1, Gen.Select(Gen.Int[0, body.Length], Gen.Byte.Array[1, 8], (at, bytes) => (byte[])[.. body[..at], .. bytes, .. body[at..]])),
        (1, Gen.Select(Gen.Int[0, body.Length], Gen.Int[0, 16], (at, count) => (byte[])[.. body[..at], .. body[Math.Min(body.Length, at + count)..]])));

    /// <summary>The samples of a generator for a seed, the same every run: a failure names its seed and index to replay it.</summary>
    public static IEnumerable<T> Samples<T>(Gen<T> gen, ulong seed, uint stream = 1)
    {
        var pcg = new PCG(stream, seed);
        while (true) yield return gen.Generate(pcg, null!, out _);
    }

    /// <summary>A JSON string literal of any .NET string, lone surrogates written as escapes.</summary>
    public static string JsonQuote(string text)
    {
        var json = new StringBuilder("\"");
        foreach (var c in text)
        {
            if (c is '"' or '\\') json.Append('\\').Append(c);
            else if (c < 0x20 || char.IsSurrogate(c)) json.Append($"\\u{(int)c:x4}");
            else json.Append(c);
        }
        return json.Append('"').ToString();
    }

    /// <summary>Every character as a \u escape: the same string to a JSON reader, other bytes on the wire.</summary>
    private static string EscapeAll(string text) => string.Concat(text.Select(c => $"\\u{(int)c:x4}"));

    /// <summary>Bytes as the content of a JSON string: quotes, backslashes and control bytes escaped, anything else (invalid UTF-8 too) as it is.</summary>
    private static byte[] QuoteBytes(byte[] content)
    {
        var quoted = new List<byte>(content.Length + 8) { (byte)'"' };
        foreach (var b in content)
        {
            if (b is (byte)'"' or (byte)'\\') quoted.AddRange([(byte)'\\', b]);
            else if (b < 0x20) quoted.AddRange(Utf8($"\\u{b:x4}"));
            else quoted.Add(b);
        }
        quoted.Add((byte)'"');
        return quoted.ToArray();
    }

    private static byte[] Join(string open, string separator, string close, IEnumerable<byte[]> items)
    {
        var joined = new List<byte>(Utf8(open));
        var first = true;
        foreach (var item in items)
        {
            if (!first) joined.AddRange(Utf8(separator));
            joined.AddRange(item);
            first = false;
        }
        joined.AddRange(Utf8(close));
        return joined.ToArray();
    }

    private static string Repeat(string text, int count) => new StringBuilder(text.Length * count).Insert(0, text, count).ToString();
}
