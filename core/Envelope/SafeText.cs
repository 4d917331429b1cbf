using System.Buffers;
using System.Globalization;
using System.Text;

namespace Pipeline.Core.Envelope;

/// <summary>
/// What a string from outside may hold. PostgreSQL stores no U+0000 (text refuses the byte, jsonb its escape) and no
/// unpaired surrogate (it has no UTF-8 form), and control characters have no place in signal names, OBD hex or device
/// metadata; so a string a device or an owner sends is refused when it holds a Unicode control character (U+0000–U+001F,
/// U+007F–U+009F) or an unpaired surrogate, written raw or as a JSON escape.
/// </summary>
public static class SafeText
{
    public const string Rule = "strings may not hold control characters (U+0000–U+001F, U+007F–U+009F) or unpaired surrogates, raw or escaped";

    private static readonly SearchValues<char> Suspects = SearchValues.Create(
        string.Concat(Enumerable.Range(0, 0x20).Concat(Enumerable.Range(0x7F, 0x21)).Concat(Enumerable.Range(0xD800, 0x800)).Select(c => (char)c)));

    /// <summary>The index of the first character no string from outside may hold, or -1.</summary>
    public static int IndexOfForbidden(ReadOnlySpan<char> text)
    {
        var start = text.IndexOfAny(Suspects);
        if (start < 0) return -1;
        for (var i = start; i < text.Length; i++)
        {
            var c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) i++;
            else if (char.IsControl(c) || char.IsSurrogate(c)) return i;
        }
        return -1;
    }

    /// <summary>bad_encoding when <paramref name="text"/> holds a character no string from outside may hold; <paramref name="what"/> names the string.</summary>
    public static Rejection? Check(string text, string what) =>
        IndexOfForbidden(text) is var at and >= 0 ? Refuse(what, $"U+{(int)text[at]:X4} at character {at + 1}") : null;

    /// <summary>The refusal of a string holding <paramref name="found"/>, saying what to do instead.</summary>
    public static Rejection Refuse(string what, string found) =>
        new(ReasonCode.BadEncoding, $"{what} holds {found}; {Rule}. Remove it and sign again.");

    /// <summary>The text with every forbidden character written as \uXXXX: safe to quote in a message, a log line or a database column.</summary>
    public static string Escape(string text)
    {
        var at = IndexOfForbidden(text);
        if (at < 0) return text;
        var escaped = new StringBuilder(text.Length + 8).Append(text, 0, at);
        for (var i = at; i < text.Length; i++)
        {
            var c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) escaped.Append(c).Append(text[++i]);
            else if (char.IsControl(c) || char.IsSurrogate(c)) escaped.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}");
            else escaped.Append(c);
        }
        return escaped.ToString();
    }

    /// <summary>A stranger's text to quote in a detail: at most <paramref name="max"/> characters (never half a surrogate pair), escaped.</summary>
    public static string Quote(string? text, int max = 40)
    {
        if (text is null) return "";
        if (text.Length <= max) return Escape(text);
        var cut = char.IsHighSurrogate(text[max - 1]) ? max - 1 : max;
        return Escape(text[..cut]) + "…";
    }
}
