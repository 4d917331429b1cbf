using System.Buffers.Binary;

namespace Pipeline.Core.Crypto;

/// <summary>
/// A 20-byte Ethereum address. Prints with its EIP-55 checksum; <see cref="ToLowerHex"/> is the form used as
/// Kafka key and stream id so that the case a client chose never splits one device in two.
/// </summary>
public readonly struct EthAddress : IEquatable<EthAddress>
{
    public const int Size = 20;

    // Three words instead of a byte array: no allocation, and equality and hashing as dictionary keys stay cheap.
    private readonly ulong _high;
    private readonly ulong _middle;
    private readonly uint _low;

    public EthAddress(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Size) throw new ArgumentException($"An address has {Size} bytes, not {bytes.Length}.", nameof(bytes));
        _high = BinaryPrimitives.ReadUInt64BigEndian(bytes);
        _middle = BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]);
        _low = BinaryPrimitives.ReadUInt32BigEndian(bytes[16..]);
    }

    public void CopyTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, _high);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], _middle);
        BinaryPrimitives.WriteUInt32BigEndian(destination[16..], _low);
    }

    /// <summary>The address of an uncompressed public key given as its 64 bytes X‖Y: the last 20 bytes of keccak256(X‖Y).</summary>
    public static EthAddress FromPublicKey(ReadOnlySpan<byte> publicKey64)
    {
        Span<byte> hash = stackalloc byte[Keccak256.Size];
        Keccak256.Hash(publicKey64, hash);
        return new EthAddress(hash[12..]);
    }

    /// <summary>
    /// Parses "0x" + 40 hex digits. All-lower and all-upper hex are accepted as written; mixed case must carry a
    /// valid EIP-55 checksum, since a wrong one means a mistyped address.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<char> text, out EthAddress address)
    {
        address = default;
        if (text.Length != 2 + 2 * Size || text[0] != '0' || (text[1] != 'x' && text[1] != 'X')) return false;
        var hex = text[2..];
        Span<byte> bytes = stackalloc byte[Size];
        if (!Hex.TryDecode(hex, bytes)) return false;
        var parsed = new EthAddress(bytes);
        if (HasMixedCase(hex) && !parsed.ToString().AsSpan(2).SequenceEqual(hex)) return false;
        address = parsed;
        return true;
    }

    /// <summary>Parses UTF-8 text such as a JSON string value, with the rules of <see cref="TryParse(ReadOnlySpan{char}, out EthAddress)"/>.</summary>
    public static bool TryParse(ReadOnlySpan<byte> utf8, out EthAddress address)
    {
        address = default;
        if (utf8.Length != 2 + 2 * Size) return false;
        Span<char> chars = stackalloc char[utf8.Length];
        for (var i = 0; i < utf8.Length; i++)
        {
            if (utf8[i] > 0x7F) return false;
            chars[i] = (char)utf8[i];
        }
        return TryParse(chars, out address);
    }

    public static EthAddress Parse(string text) =>
        TryParse(text.AsSpan(), out var address) ? address : throw new FormatException($"'{text}' is not an Ethereum address (0x + 40 hex digits, EIP-55 checksum if mixed case).");

    private static bool HasMixedCase(ReadOnlySpan<char> hex)
    {
        bool lower = false, upper = false;
        foreach (var c in hex)
        {
            lower |= c is >= 'a' and <= 'f';
            upper |= c is >= 'A' and <= 'F';
        }
        return lower && upper;
    }

    public string ToLowerHex()
    {
        Span<byte> bytes = stackalloc byte[Size];
        CopyTo(bytes);
        return "0x" + Convert.ToHexStringLower(bytes);
    }

    /// <summary>The EIP-55 checksummed form: a hex letter is upper case where the matching nibble of keccak256(lower hex) is 8 or more.</summary>
    public override string ToString()
    {
        Span<byte> bytes = stackalloc byte[Size];
        CopyTo(bytes);
        Span<byte> lower = stackalloc byte[2 * Size];
        Hex.EncodeLower(bytes, lower);
        Span<byte> hash = stackalloc byte[Keccak256.Size];
        Keccak256.Hash(lower, hash);
        Span<char> chars = stackalloc char[2 + 2 * Size];
        chars[0] = '0';
        chars[1] = 'x';
        for (var i = 0; i < lower.Length; i++)
        {
            var nibble = (i & 1) == 0 ? hash[i >> 1] >> 4 : hash[i >> 1] & 0x0F;
            var c = (char)lower[i];
            chars[2 + i] = c >= 'a' && nibble >= 8 ? char.ToUpperInvariant(c) : c;
        }
        return new string(chars);
    }

    public bool Equals(EthAddress other) => _high == other._high && _middle == other._middle && _low == other._low;
    public override bool Equals(object? obj) => obj is EthAddress other && Equals(other);
    public override int GetHashCode() => HashCode.Combine(_high, _middle, _low);
    public static bool operator ==(EthAddress left, EthAddress right) => left.Equals(right);
    public static bool operator !=(EthAddress left, EthAddress right) => !left.Equals(right);
}
