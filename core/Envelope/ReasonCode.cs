namespace Pipeline.Core.Envelope;

/// <summary>
/// The closed list of reasons a reading or a request is refused. Wire names (snake_case) are firm: clients,
/// dead-letter consumers and quality scores depend on them. See the README's table for what each means.
/// </summary>
public enum ReasonCode
{
    // Shape: checked at the edge and again by the processors.
    Malformed,
    UnknownField,
    TooLarge,
    BadEncoding,
    BadAddress,
    BadSignature,

    // Trust and plausibility: decided by the processors.
    UnknownDevice,
    SignerMismatch,
    Stale,
    Future,
    OutOfRange,
    UnknownSignal,
    UnsupportedPid,
    SeqConflict,
    Teleport,
    Unstorable,

    // Whole requests at the edge.
    UnsupportedMediaType,
    RateLimited,
    Unavailable,

    // Registry requests.
    AlreadyRegistered,
    WrongOwner,
    StaleMessage,
    WrongNetwork,
}

public static class ReasonCodes
{
    private static readonly Dictionary<ReasonCode, string> WireNames = Enum.GetValues<ReasonCode>().ToDictionary(code => code, ToSnakeCase);
    private static readonly Dictionary<string, ReasonCode> ByWireName = WireNames.ToDictionary(pair => pair.Value, pair => pair.Key);

    public static IReadOnlyCollection<ReasonCode> All => WireNames.Keys;

    public static string ToWire(this ReasonCode code) => WireNames[code];

    public static bool TryParse(string wire, out ReasonCode code) => ByWireName.TryGetValue(wire, out code);

    /// <summary>One line per code, for documentation, problem responses and help text.</summary>
    public static string Describe(this ReasonCode code) => code switch
    {
        ReasonCode.Malformed => "Not JSON, or a field is missing or of the wrong type.",
        ReasonCode.UnknownField => "A field that the envelope or payload does not define.",
        ReasonCode.TooLarge => "Over a size or count limit (bytes per reading or batch, readings per batch, signals, string length).",
        ReasonCode.BadEncoding => "Not valid UTF-8, a string holding a control character or an unpaired surrogate (raw or escaped, such as \\u0000), or a compressed body that does not decompress.",
        ReasonCode.BadAddress => "The device is not 0x + 40 hex digits, or mixed case with a wrong EIP-55 checksum.",
        ReasonCode.BadSignature => "sig is not a valid low-s EIP-191 signature (0x + 130 hex, v = 27/28 or 0/1) of the payload.",
        ReasonCode.UnknownDevice => "The device is not registered.",
        ReasonCode.SignerMismatch => "The signature is valid but was made by another key than the device's.",
        ReasonCode.Stale => "The device time is too far behind the time the reading was received.",
        ReasonCode.Future => "The device time is ahead of the time the reading was received.",
        ReasonCode.OutOfRange => "A signal value outside its physical range.",
        ReasonCode.UnknownSignal => "A signal name that is not defined for the device's kind.",
        ReasonCode.UnsupportedPid => "A raw OBD-II response for a PID the decoder does not support.",
        ReasonCode.SeqConflict => "Another payload was already accepted with this device and seq (equivocation).",
        ReasonCode.Teleport => "The position moved faster than a vehicle can since the device's previous fix.",
        ReasonCode.Unstorable => "The event store refused to record the message (a PostgreSQL data error, named in the detail); it was set aside and the rest of its batch recorded.",
        ReasonCode.UnsupportedMediaType => "The Content-Type or Content-Encoding is not one the endpoint takes.",
        ReasonCode.RateLimited => "Too many requests for this device or client; retry after the time given.",
        ReasonCode.Unavailable => "The broker cannot take readings now (nothing was acknowledged), or the database is unreachable or restarting; retry after the time given.",
        ReasonCode.AlreadyRegistered => "The device is already registered; transfer it instead.",
        ReasonCode.WrongOwner => "The message names an owner who does not own the device.",
        ReasonCode.StaleMessage => "The signed message is out of date: its nonce was used or its time is too far from now; sign a fresh one.",
        ReasonCode.WrongNetwork => "The message is signed for another network (its EIP-712 domain differs); sign it with the domain GET /v1/network returns.",
        _ => throw new ArgumentOutOfRangeException(nameof(code), code, null),
    };

    private static string ToSnakeCase(ReasonCode code)
    {
        var name = code.ToString();
        var builder = new System.Text.StringBuilder(name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            if (char.IsUpper(name[i]) && i > 0) builder.Append('_');
            builder.Append(char.ToLowerInvariant(name[i]));
        }
        return builder.ToString();
    }
}

/// <summary>Why one reading or request was refused: a reason code and a sentence for the human reading it.</summary>
public sealed record Rejection(ReasonCode Code, string Detail)
{
    /// <summary>
    /// The sentence, with any control character or unpaired surrogate a quoted stranger's text brought in escaped: it
    /// goes as it is into problem responses, Kafka headers, events and dead-letter rows.
    /// </summary>
    public string Detail { get; } = SafeText.Escape(Detail);

    public override string ToString() => $"{Code.ToWire()}: {Detail}";
}
