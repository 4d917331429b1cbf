using System.Buffers;
using System.Text.Json;
using Pipeline.Core.Envelope;
using Pipeline.Core.Events;

namespace Pipeline.Streams.Processing;

/// <summary>
/// The JSON bodies of a batch's <see cref="ReadingAccepted"/> and <see cref="ReadingRejected"/> events, written straight
/// from the outcomes into one buffer, as UTF-8 for PostgreSQL's jsonb: no event record, no reflection, no string per
/// body. The same JSON as Marten's serializer writes for those records (camelCase, signal names as they are) — the
/// lake and every reader parse it with the records (ReadingEventBodiesTests hold the two to each other).
/// </summary>
public sealed class ReadingEventBodies : IDisposable
{
    private readonly ArrayBufferWriter<byte> _buffer = new(64 * 1024);
    private readonly Utf8JsonWriter _writer;
    private readonly List<(int Start, int Length)> _bodies = [];

    public ReadingEventBodies() => _writer = new Utf8JsonWriter(_buffer);

    public int Count => _bodies.Count;

    public void Clear()
    {
        _buffer.ResetWrittenCount();
        _bodies.Clear();
        _writer.Reset();
    }

    /// <summary>Adds the body of <paramref name="outcome"/>'s event: accepted with its signals, or rejected with its reason.</summary>
    public void Add(Outcome outcome)
    {
        var start = _buffer.WrittenCount;
        var reading = outcome.Reading!;
        var message = outcome.Message;
        var w = _writer;
        w.WriteStartObject();
        Span<byte> id = stackalloc byte[ReadingId.HexLength];
        reading.ReadingId.WriteHex(id);
        w.WriteString(Names.ReadingId, id);
        w.WriteNumber(Names.Seq, reading.Content.Seq);
        if (outcome.Verdict == Verdict.Accepted)
        {
            w.WriteString(Names.DeviceTime, reading.Content.DeviceTime);
            w.WriteString(Names.ReceivedAt, message.ReceivedAt);
            w.WriteStartObject(Names.Signals);
            foreach (var (name, value) in outcome.Signals!) w.WriteNumber(name, value);
            w.WriteEndObject();
        }
        else
        {
            w.WriteString(Names.Reason, outcome.Rejection!.Code.ToWire());
            w.WriteString(Names.Detail, outcome.Rejection.Detail);
            w.WriteString(Names.ReceivedAt, message.ReceivedAt);
        }
        w.WriteNumber(Names.Partition, message.Partition);
        w.WriteNumber(Names.Offset, message.Offset);
        w.WriteEndObject();
        w.Flush();
        // One root value per body: the writer starts the next one afresh, on the same buffer.
        w.Reset();
        _bodies.Add((start, _buffer.WrittenCount - start));
    }

    /// <summary>The bodies added since <see cref="Clear"/>, in order; valid until the next Add or Clear.</summary>
    public ReadOnlyMemory<byte>[] ToArray()
    {
        var written = _buffer.WrittenMemory;
        var bodies = new ReadOnlyMemory<byte>[_bodies.Count];
        for (var i = 0; i < bodies.Length; i++) bodies[i] = written.Slice(_bodies[i].Start, _bodies[i].Length);
        return bodies;
    }

    public void Dispose() => _writer.Dispose();

    /// <summary>The records' property names in the camelCase Marten writes them with.</summary>
    private static class Names
    {
        public static readonly JsonEncodedText ReadingId = JsonEncodedText.Encode("readingId");
        public static readonly JsonEncodedText Seq = JsonEncodedText.Encode("seq");
        public static readonly JsonEncodedText DeviceTime = JsonEncodedText.Encode("deviceTime");
        public static readonly JsonEncodedText ReceivedAt = JsonEncodedText.Encode("receivedAt");
        public static readonly JsonEncodedText Signals = JsonEncodedText.Encode("signals");
        public static readonly JsonEncodedText Reason = JsonEncodedText.Encode("reason");
        public static readonly JsonEncodedText Detail = JsonEncodedText.Encode("detail");
        public static readonly JsonEncodedText Partition = JsonEncodedText.Encode("partition");
        public static readonly JsonEncodedText Offset = JsonEncodedText.Encode("offset");
    }
}
