using System.Buffers;
using System.Security.Cryptography;

namespace Pipeline.Marketplace.Exports;

/// <summary>
/// The IPFS CID of a file as <c>ipfs add --cid-version 1</c> computes it: 256 KiB chunks stored as raw leaves, joined
/// by dag-pb UnixFS file nodes of at most 174 links, level by level (the balanced layout), sha2-256, CIDv1 in base32.
/// A file of one chunk is its raw leaf. Nothing is stored: only the hashes are computed, chunk by chunk.
/// </summary>
public static class UnixFsCid
{
    public const int ChunkSize = 256 * 1024;
    public const int MaxLinks = 174;
    private const int RawCodec = 0x55;
    private const int DagPbCodec = 0x70;

    /// <summary>A node of the DAG as its parent links to it: CID bytes, file bytes below it, and its cumulative size (Tsize).</summary>
    private readonly record struct Node(byte[] Cid, ulong FileSize, ulong TreeSize);

    /// <summary>The CID of <paramref name="content"/> from its position to its end; <paramref name="alongside"/>, if given, is fed the same bytes, so another digest needs no second read.</summary>
    public static async Task<string> ComputeAsync(Stream content, CancellationToken cancellation = default, IncrementalHash? alongside = null)
    {
        var level = new List<Node>();
        var buffer = ArrayPool<byte>.Shared.Rent(ChunkSize);
        try
        {
            while (true)
            {
                var filled = await content.ReadAtLeastAsync(buffer.AsMemory(0, ChunkSize), ChunkSize, throwOnEndOfStream: false, cancellation);
                // An empty file is one empty chunk, as the importer makes it.
                if (filled == 0 && level.Count > 0) break;
                alongside?.AppendData(buffer, 0, filled);
                level.Add(new Node(Cid(RawCodec, buffer.AsSpan(0, filled)), (ulong)filled, (ulong)filled));
                if (filled < ChunkSize) break;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        while (level.Count > 1) level = level.Chunk(MaxLinks).Select(Parent).ToList();
        return "b" + Base32(level[0].Cid);
    }

    public static string Compute(byte[] content) => ComputeAsync(new MemoryStream(content)).GetAwaiter().GetResult();

    // A dag-pb node: its links (field 2) before its data (field 1), as dag-pb's canonical form orders them.
    private static Node Parent(Node[] children)
    {
        var fileSize = children.Aggregate(0UL, (sum, c) => sum + c.FileSize);
        var data = new ProtoWriter();
        data.Varint(1, 2); // Type = File
        data.Varint(3, fileSize);
        foreach (var child in children) data.Varint(4, child.FileSize); // blocksizes, unpacked (proto2)

        var node = new ProtoWriter();
        foreach (var child in children)
        {
            var link = new ProtoWriter();
            link.Bytes(1, child.Cid);
            link.Bytes(2, []); // Name: present and empty, as the importer writes it
            link.Varint(3, child.TreeSize);
            node.Bytes(2, link.ToArray());
        }
        node.Bytes(1, data.ToArray());
        var block = node.ToArray();
        return new Node(Cid(DagPbCodec, block), fileSize, (ulong)block.Length + children.Aggregate(0UL, (sum, c) => sum + c.TreeSize));
    }

    // CIDv1: version, codec, then the multihash sha2-256 (code 0x12, 32 bytes). Every number here fits one varint byte.
    private static byte[] Cid(int codec, ReadOnlySpan<byte> block)
    {
        var cid = new byte[4 + 32];
        cid[0] = 1;
        cid[1] = (byte)codec;
        cid[2] = 0x12;
        cid[3] = 32;
        SHA256.HashData(block, cid.AsSpan(4));
        return cid;
    }

    /// <summary>RFC 4648 base32, lowercase, unpadded: multibase 'b'.</summary>
    public static string Base32(ReadOnlySpan<byte> bytes)
    {
        const string alphabet = "abcdefghijklmnopqrstuvwxyz234567";
        var text = new char[(bytes.Length * 8 + 4) / 5];
        int bits = 0, value = 0, at = 0;
        foreach (var b in bytes)
        {
            value = ((value << 8) | b) & 0xFFFF; // only the bits not yet written matter
            bits += 8;
            while (bits >= 5)
            {
                text[at++] = alphabet[(value >> (bits - 5)) & 31];
                bits -= 5;
            }
        }
        if (bits > 0) text[at++] = alphabet[(value << (5 - bits)) & 31];
        return new string(text, 0, at);
    }

    /// <summary>Just enough protobuf: varint and length-delimited fields.</summary>
    private sealed class ProtoWriter
    {
        private readonly MemoryStream _bytes = new();

        public void Varint(int field, ulong value)
        {
            Raw((ulong)field << 3);
            Raw(value);
        }

        public void Bytes(int field, ReadOnlySpan<byte> value)
        {
            Raw(((ulong)field << 3) | 2);
            Raw((ulong)value.Length);
            _bytes.Write(value);
        }

        public byte[] ToArray() => _bytes.ToArray();

        private void Raw(ulong value)
        {
            for (; value >= 0x80; value >>= 7) _bytes.WriteByte((byte)(value | 0x80));
            _bytes.WriteByte((byte)value);
        }
    }
}
