namespace Pipeline.Core.Envelope;

/// <summary>
/// RFC 3339 date-times as signed messages carry them. System.Text.Json also accepts a bare date or a time without an
/// offset and reads those in the server's zone, which would make the same signed reading mean different instants on
/// different hosts; here the offset is required.
/// </summary>
public static class Rfc3339
{
    public const string Example = "2026-11-23T19:00:00.123Z";

    /// <summary>True when <paramref name="utf8"/> is a date, 'T', a time and an explicit offset (Z or ±hh:mm).</summary>
    public static bool HasDateTimeAndOffset(ReadOnlySpan<byte> utf8)
    {
        // yyyy-MM-ddThh:mm:ss is 19 characters; the offset adds 1 (Z) or 6 (±hh:mm).
        if (utf8.Length < 20 || (utf8[10] | 0x20) != 't') return false;
        if ((utf8[^1] | 0x20) == 'z') return true;
        return utf8.Length >= 25 && utf8[^6] is (byte)'+' or (byte)'-' && utf8[^3] == ':';
    }
}
