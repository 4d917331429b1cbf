using System.Buffers.Binary;
using Pipeline.Core.Crypto;

namespace Pipeline.Core.Envelope;

/// <summary>
/// A reading's id: keccak256 of its signed payload bytes, the same payload being the same reading. Kept as 32 bytes;
/// the "0x" + 64 lower-case hex form is made only where it is written out.
/// </summary>
public readonly struct ReadingId : IEquatable<ReadingId>
{
    public const int Size = Keccak256.Size;

    /// <summary>Length of the hex form, "0x" + 64 digits.</summary>
    public const int HexLength = 2 + 2 * Size;

    // Four words instead of a byte array: no allocation, and cheap equality and hashing as a set or dictionary key.
    private readonly ulong _a;
    private readonly ulong _b;
    private readonly ulong _c;
    private readonly ulong _d;

    public ReadingId(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Size) throw new ArgumentException($"A reading id has {Size} bytes, not {bytes.Length}.", nameof(bytes));
        _a = BinaryPrimitives.ReadUInt64BigEndian(bytes);
        _b = BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]);
        _c = BinaryPrimitives.ReadUInt64BigEndian(bytes[16..]);
        _d = BinaryPrimitives.ReadUInt64BigEndian(bytes[24..]);
    }

    /// <summary>The id of a payload: keccak256 of its exact bytes.</summary>
    public static ReadingId Of(ReadOnlySpan<byte> payload)
    {
        Span<byte> hash = stackalloc byte[Size];
        Keccak256.Hash(payload, hash);
        return new ReadingId(hash);
    }

    /// <summary>Parses "0x" + 64 hex digits.</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out ReadingId id)
    {
        id = default;
        Span<byte> bytes = stackalloc byte[Size];
        if (text.Length != HexLength || !text.StartsWith("0x", StringComparison.Ordinal) || !Hex.TryDecode(text[2..], bytes)) return false;
        id = new ReadingId(bytes);
        return true;
    }

    public void CopyTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, _a);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], _b);
        BinaryPrimitives.WriteUInt64BigEndian(destination[16..], _c);
        BinaryPrimitives.WriteUInt64BigEndian(destination[24..], _d);
    }

    public byte[] ToArray()
    {
        var bytes = new byte[Size];
        CopyTo(bytes);
        return bytes;
    }

    /// <summary>The id of the reading's event in the store: its first 16 bytes, so the store's unique index on event ids refuses a second copy.</summary>
    public Guid ToEventId()
    {
        Span<byte> bytes = stackalloc byte[Size];
        CopyTo(bytes);
        return new Guid(bytes[..16]);
    }

    /// <summary>Writes the hex form as UTF-8 ("0x" + 64 lower-case digits) into <paramref name="utf8"/>, at least <see cref="HexLength"/> bytes.</summary>
    public void WriteHex(Span<byte> utf8)
    {
        Span<byte> bytes = stackalloc byte[Size];
        CopyTo(bytes);
        utf8[0] = (byte)'0';
        utf8[1] = (byte)'x';
        Hex.EncodeLower(bytes, utf8[2..HexLength]);
    }

    /// <summary>"0x" + 64 lower-case hex digits.</summary>
    public override string ToString()
    {
        Span<byte> bytes = stackalloc byte[Size];
        CopyTo(bytes);
        return Hex.Encode0x(bytes);
    }

    public bool Equals(ReadingId other) => _a == other._a && _b == other._b && _c == other._c && _d == other._d;
    public override bool Equals(object? obj) => obj is ReadingId other && Equals(other);
    public override int GetHashCode() => HashCode.Combine(_a, _b, _c, _d);
    public static bool operator ==(ReadingId left, ReadingId right) => left.Equals(right);
    public static bool operator !=(ReadingId left, ReadingId right) => !left.Equals(right);
}
