using System.Text.Json;

namespace Pipeline.Core.Envelope;

public enum BatchFormat
{
    /// <summary>application/json: one envelope object or an array of them.</summary>
    Json,
    /// <summary>application/x-ndjson: one envelope per line.</summary>
    NdJson,
}

/// <summary>One item of a batch: its position, its bytes, and what became of it.</summary>
public sealed record BatchItem(int Index, ReadOnlyMemory<byte> Raw, SignedReading? Reading, Rejection? Rejection);

/// <summary>The items of a batch, or the reason the batch as a whole could not be read.</summary>
public sealed record BatchResult(IReadOnlyList<BatchItem> Items, Rejection? Error)
{
    public static BatchResult Failed(ReasonCode code, string detail) => new([], new Rejection(code, detail));
}

/// <summary>
/// Splits a request body into envelopes. A bad item is refused alone and the rest of the batch goes on; only a
/// body whose items cannot be told apart (broken JSON syntax in an array, too many items) fails as a whole.
/// </summary>
public static class BatchParser
{
    public static BatchResult Parse(ReadOnlyMemory<byte> body, BatchFormat format, EnvelopeLimits limits)
    {
        if (body.Length > limits.MaxBatchBytes)
            return BatchResult.Failed(ReasonCode.TooLarge, $"The body has {body.Length} bytes; the limit is {limits.MaxBatchBytes}.");
        return format == BatchFormat.NdJson ? ParseLines(body, limits) : ParseJson(body, limits);
    }

    private static BatchResult ParseJson(ReadOnlyMemory<byte> body, EnvelopeLimits limits)
    {
        var span = body.Span;
        var first = span.IndexOfAnyExcept(" \t\r\n"u8);
        if (first < 0) return BatchResult.Failed(ReasonCode.Malformed, "The body is empty; send an envelope, an array of envelopes, or NDJSON.");
        if (span[first] == (byte)'{') return new BatchResult([Item(0, body, limits)], null);
        if (span[first] != (byte)'[') return BatchResult.Failed(ReasonCode.Malformed, "The body is neither a JSON object nor an array of envelopes.");

        var items = new List<BatchItem>();
        try
        {
            var reader = new Utf8JsonReader(span, new JsonReaderOptions { MaxDepth = limits.MaxDepth });
            reader.Read();
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                if (items.Count == limits.MaxBatchReadings)
                    return BatchResult.Failed(ReasonCode.TooLarge, $"More than {limits.MaxBatchReadings} readings in one batch.");
                var start = (int)reader.TokenStartIndex;
                var isObject = reader.TokenType == JsonTokenType.StartObject;
                reader.Skip();
                var raw = body[start..(int)reader.BytesConsumed];
                items.Add(isObject
                    ? Item(items.Count, raw, limits)
                    : new BatchItem(items.Count, raw, null, new Rejection(ReasonCode.Malformed, "An array item must be an envelope object.")));
            }
            while (reader.Read()) { }
        }
        catch (JsonException e)
        {
            return BatchResult.Failed(ReasonCode.Malformed, $"The JSON array is broken at line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}: {e.Message}");
        }
        return items.Count == 0 ? BatchResult.Failed(ReasonCode.Malformed, "The array holds no readings.") : new BatchResult(items, null);
    }

    private static BatchResult ParseLines(ReadOnlyMemory<byte> body, EnvelopeLimits limits)
    {
        var items = new List<BatchItem>();
        var rest = body;
        while (!rest.IsEmpty)
        {
            var end = rest.Span.IndexOf((byte)'\n');
            var line = end < 0 ? rest : rest[..end];
            rest = end < 0 ? ReadOnlyMemory<byte>.Empty : rest[(end + 1)..];
            line = Trim(line);
            if (line.IsEmpty) continue;
            if (items.Count == limits.MaxBatchReadings)
                return BatchResult.Failed(ReasonCode.TooLarge, $"More than {limits.MaxBatchReadings} readings in one batch.");
            items.Add(Item(items.Count, line, limits));
        }
        return items.Count == 0 ? BatchResult.Failed(ReasonCode.Malformed, "The body holds no readings.") : new BatchResult(items, null);
    }

    private static BatchItem Item(int index, ReadOnlyMemory<byte> raw, EnvelopeLimits limits)
    {
        var result = EnvelopeParser.Parse(raw, limits);
        return new BatchItem(index, raw, result.Reading, result.Rejection);
    }

    private static ReadOnlyMemory<byte> Trim(ReadOnlyMemory<byte> line)
    {
        var span = line.Span;
        var start = span.IndexOfAnyExcept(" \t\r"u8);
        if (start < 0) return ReadOnlyMemory<byte>.Empty;
        var end = span.LastIndexOfAnyExcept(" \t\r"u8);
        return line[start..(end + 1)];
    }
}
