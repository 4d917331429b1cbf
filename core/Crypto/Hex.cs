using System.Buffers;

namespace Pipeline.Core.Crypto;

/// <summary>Hex helpers for the "0x…" strings of Ethereum tooling, without allocating.</summary>
public static class Hex
{
    // The runtime's decoder is vectorized: a signature's 130 digits cost a few instructions, not 130 branches.
    public static bool TryDecode(ReadOnlySpan<char> hex, Span<byte> bytes) =>
        hex.Length == 2 * bytes.Length && Convert.FromHexString(hex, bytes, out _, out _) == OperationStatus.Done;

    public static bool TryDecode(ReadOnlySpan<byte> utf8Hex, Span<byte> bytes) =>
        utf8Hex.Length == 2 * bytes.Length && Convert.FromHexString(utf8Hex, bytes, out _, out _) == OperationStatus.Done;

    /// <summary>Decodes "0x"-prefixed (or bare) hex of any even length.</summary>
    public static byte[] Decode(string hex)
    {
        var digits = hex.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? hex.AsSpan(2) : hex.AsSpan();
        var bytes = new byte[digits.Length / 2];
        if (digits.Length % 2 != 0 || !TryDecode(digits, bytes)) throw new FormatException($"'{hex}' is not hex.");
        return bytes;
    }

    public static string Encode0x(ReadOnlySpan<byte> bytes) => "0x" + Convert.ToHexStringLower(bytes);

    internal static void EncodeLower(ReadOnlySpan<byte> bytes, Span<byte> utf8)
    {
        const string digits = "0123456789abcdef";
        for (var i = 0; i < bytes.Length; i++)
        {
            utf8[2 * i] = (byte)digits[bytes[i] >> 4];
            utf8[2 * i + 1] = (byte)digits[bytes[i] & 0x0F];
        }
    }
}
