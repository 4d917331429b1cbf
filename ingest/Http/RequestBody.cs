using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;
using Pipeline.Core.Envelope;

namespace Pipeline.Ingest.Http;

/// <summary>A request body read into a pooled buffer, inflated if gzip, never beyond the batch byte limit.</summary>
public sealed class RequestBody : IDisposable
{
    private byte[] _buffer;

    private RequestBody(byte[] buffer, int length)
    {
        _buffer = buffer;
        Memory = buffer.AsMemory(0, length);
    }

    public ReadOnlyMemory<byte> Memory { get; }

    public static BatchFormat? FormatOf(HttpRequest request)
    {
        if (!MediaTypeHeaderValue.TryParse(request.ContentType, out var type)) return null;
        if (type.Charset.HasValue && !type.Charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase)) return null;
        return type.MediaType.Value?.ToLowerInvariant() switch
        {
            "application/json" => BatchFormat.Json,
            "application/x-ndjson" or "application/ndjson" or "application/jsonl" => BatchFormat.NdJson,
            _ => null,
        };
    }

    /// <summary>Reads the body, or says why not: too_large, bad_encoding (gzip that does not inflate whole), unsupported_media_type.</summary>
    public static async Task<(RequestBody? Body, Rejection? Rejection)> ReadAsync(HttpRequest request, int maxBytes, CancellationToken cancellation)
    {
        var encoding = request.Headers.ContentEncoding.ToString().Trim().ToLowerInvariant();
        if (encoding is not ("" or "identity" or "gzip" or "x-gzip"))
            return (null, new Rejection(ReasonCode.UnsupportedMediaType, $"Content-Encoding '{encoding}' is not supported; send gzip or no encoding."));

        // A declared length over the limit is refused before a byte of the body is read.
        if (request.ContentLength > maxBytes) return (null, TooLarge(maxBytes, ""));
        var raw = await ReadBoundedAsync(request.Body, maxBytes, request.ContentLength, cancellation);
        if (raw is null) return (null, TooLarge(maxBytes, ""));
        if (encoding is "" or "identity") return (raw, null);

        using (raw)
        {
            try
            {
                await using var inflate = new GZipStream(new MemoryStream(raw._buffer, 0, raw.Memory.Length), CompressionMode.Decompress);
                var inflated = await ReadBoundedAsync(inflate, maxBytes, null, cancellation);
                if (inflated is null) return (null, TooLarge(maxBytes, " once decompressed"));
                // GZipStream ends quietly on a cut-off stream; the trailer's length (ISIZE) tells a whole member from a truncated one.
                if (raw.Memory.Length < 18 || BinaryPrimitives.ReadUInt32LittleEndian(raw.Memory.Span[^4..]) != (uint)inflated.Memory.Length)
                {
                    inflated.Dispose();
                    return (null, new Rejection(ReasonCode.BadEncoding, "The gzip body is truncated: its trailer is missing or does not match the inflated length."));
                }
                return (inflated, null);
            }
            catch (InvalidDataException e)
            {
                return (null, new Rejection(ReasonCode.BadEncoding, $"The gzip body does not decompress: {e.Message}"));
            }
        }
    }

    private static Rejection TooLarge(int maxBytes, string how) =>
        new(ReasonCode.TooLarge, $"The body is larger than {maxBytes} bytes{how}; split the batch.");

    /// <summary>Reads a stream into a pooled buffer; null when it holds more than <paramref name="maxBytes"/>.</summary>
    private static async Task<RequestBody?> ReadBoundedAsync(Stream source, int maxBytes, long? expected, CancellationToken cancellation)
    {
        // One byte past the limit tells "too large" from "exactly the limit"; nothing further is read, however much
        // larger than asked the pool's buffer comes back.
        var cap = maxBytes + 1;
        var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(Math.Max(expected + 1 ?? 64 * 1024, 4 * 1024), cap));
        var length = 0;
        try
        {
            while (true)
            {
                var room = Math.Min(buffer.Length, cap);
                if (length == room)
                {
                    if (length == cap)
                    {
                        ArrayPool<byte>.Shared.Return(buffer);
                        return null;
                    }
                    var larger = ArrayPool<byte>.Shared.Rent((int)Math.Min(cap, 2L * buffer.Length));
                    buffer.AsSpan(0, length).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                    room = Math.Min(buffer.Length, cap);
                }
                var read = await source.ReadAsync(buffer.AsMemory(length, room - length), cancellation);
                if (read == 0) return new RequestBody(buffer, length);
                length += read;
            }
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    public void Dispose()
    {
        if (_buffer.Length == 0) return;
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
    }
}
