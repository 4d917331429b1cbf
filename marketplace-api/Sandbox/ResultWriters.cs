using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Apache.Arrow;
using Apache.Arrow.Ipc;
using Apache.Arrow.Types;

namespace Pipeline.Marketplace.Sandbox;

/// <summary>The formats a result streams in.</summary>
public enum ResultFormat
{
    /// <summary>A JSON array of objects, times in ISO 8601 (UTC).</summary>
    Json,
    /// <summary>RFC 4180 CSV with a header row; nested values as JSON text.</summary>
    Csv,
    /// <summary>An Arrow IPC stream (the "streaming format").</summary>
    ArrowIpc,
    /// <summary>A Parquet file (zstd), one row group per chunk of at most 1,024 rows.</summary>
    Parquet,
}

/// <summary>
/// Writes a result's record batches in one format; the output counts its bytes for metering. Text formats stop before
/// the row that would start past the byte cap, binary ones before the chunk (of at most <see cref="ChunkRows"/> rows).
/// </summary>
internal abstract class ResultWriter(CountingStream output) : IDisposable
{
    public const int ChunkRows = 1024;

    protected CountingStream Output { get; } = output;

    public abstract void Begin(Schema schema);

    /// <summary>Writes the first <paramref name="count"/> rows of <paramref name="batch"/>, or fewer once <paramref name="byteCap"/> bytes are out; returns how many.</summary>
    public abstract int Write(RecordBatch batch, int count, long byteCap);

    public abstract void End();
    public virtual void Dispose() { }

    /// <summary>Writes whole chunks, for formats that cannot stop inside one.</summary>
    protected int WriteChunks(RecordBatch batch, int count, long byteCap, Action<RecordBatch> write)
    {
        var written = 0;
        while (written < count && Output.Written < byteCap)
        {
            var length = Math.Min(ChunkRows, count - written);
            // A shared slice holds its own reference to the batch's buffers, which DuckDB's Arrow export owns.
            using var chunk = batch.SliceShared(written, length);
            write(chunk);
            written += length;
        }
        return written;
    }

    public static ResultWriter For(ResultFormat format, CountingStream output) => format switch
    {
        ResultFormat.Json => new JsonResultWriter(output),
        ResultFormat.Csv => new CsvResultWriter(output),
        ResultFormat.ArrowIpc => new ArrowResultWriter(output),
        ResultFormat.Parquet => new ParquetResultWriter(output),
        _ => throw new ArgumentOutOfRangeException(nameof(format)),
    };

    /// <summary>Refuses a column type the text formats cannot show faithfully, before anything is written.</summary>
    public static void CheckTypes(Schema schema)
    {
        foreach (var field in schema.FieldsList)
            if (!Supported(field.DataType))
                throw new SandboxRefusedException(SandboxReason.UnsupportedType, $"Column '{field.Name}' has type {field.DataType.Name}, which results cannot carry; CAST it to VARCHAR or a number.");
    }

    private static bool Supported(IArrowType type) => type switch
    {
        StringType or StringViewType or LargeStringType or BooleanType or Int8Type or Int16Type or Int32Type or Int64Type or UInt8Type
            or UInt16Type or UInt32Type or UInt64Type or FloatType or DoubleType or Decimal128Type or Date32Type or TimestampType or NullType => true,
        ListType list => Supported(list.ValueDataType),
        StructType s => s.Fields.All(f => Supported(f.DataType)),
        _ => false,
    };

    /// <summary>One value as JSON; dates and times as ISO 8601 strings (UTC).</summary>
    internal static void WriteJson(Utf8JsonWriter json, IArrowArray array, int index)
    {
        if (array.IsNull(index)) { json.WriteNullValue(); return; }
        switch (array)
        {
            case StringArray a: WriteText(json, a.GetBytes(index), a, index); break;
            case StringViewArray a: WriteText(json, a.GetBytes(index), a, index); break;
            case BooleanArray a: json.WriteBooleanValue(a.GetValue(index)!.Value); break;
            case Int8Array a: json.WriteNumberValue(a.GetValue(index)!.Value); break;
            case Int16Array a: json.WriteNumberValue(a.GetValue(index)!.Value); break;
            case Int32Array a: json.WriteNumberValue(a.GetValue(index)!.Value); break;
            case Int64Array a: json.WriteNumberValue(a.GetValue(index)!.Value); break;
            case UInt8Array a: json.WriteNumberValue(a.GetValue(index)!.Value); break;
            case UInt16Array a: json.WriteNumberValue(a.GetValue(index)!.Value); break;
            case UInt32Array a: json.WriteNumberValue(a.GetValue(index)!.Value); break;
            case UInt64Array a: json.WriteNumberValue(a.GetValue(index)!.Value); break;
            case FloatArray a: WriteFloat(json, a.GetValue(index)!.Value); break;
            case DoubleArray a: WriteFloat(json, a.GetValue(index)!.Value); break;
            // A HUGEINT sum or a wide DECIMAL may exceed double precision: its exact digits, unquoted.
            case Decimal128Array a: json.WriteRawValue(a.GetSqlDecimal(index)!.Value.ToString(), skipInputValidation: true); break;
            case ListArray a:
                json.WriteStartArray();
                var values = a.GetSlicedValues(index);
                for (var i = 0; i < values.Length; i++) WriteJson(json, values, i);
                json.WriteEndArray();
                break;
            case StructArray a:
                json.WriteStartObject();
                var fields = ((StructType)a.Data.DataType).Fields;
                for (var f = 0; f < fields.Count; f++)
                {
                    json.WritePropertyName(fields[f].Name);
                    WriteJson(json, a.Fields[f], index);
                }
                json.WriteEndObject();
                break;
            case TimestampArray a:
                Span<byte> time = stackalloc byte[32];
                json.WriteStringValue(time[..FormatIso(a.GetTimestamp(index)!.Value, time)]);
                break;
            default: json.WriteStringValue(Text(array, index)); break;
        }
    }

    // DuckDB's text is UTF-8 and goes out as it is, without a detour through a .NET string; bytes that are not UTF-8
    // (which DuckDB does not produce) go the old way, where they become U+FFFD.
    private static void WriteText(Utf8JsonWriter json, ReadOnlySpan<byte> utf8, IArrowArray array, int index)
    {
        if (System.Text.Unicode.Utf8.IsValid(utf8)) json.WriteStringValue(utf8);
        else json.WriteStringValue(Text(array, index));
    }

    // JSON has no NaN or infinity: written as strings, as PostgreSQL's JSON does.
    private static void WriteFloat(Utf8JsonWriter json, double value)
    {
        if (double.IsFinite(value)) json.WriteNumberValue(value);
        else json.WriteStringValue(value.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>One value as text (CSV); null as null.</summary>
    protected static string? Text(IArrowArray array, int index)
    {
        if (array.IsNull(index)) return null;
        return array switch
        {
            StringArray a => a.GetString(index),
            StringViewArray a => a.GetString(index),
            BooleanArray a => a.GetValue(index)!.Value ? "true" : "false",
            DoubleArray a => a.GetValue(index)!.Value.ToString("R", CultureInfo.InvariantCulture),
            FloatArray a => a.GetValue(index)!.Value.ToString("R", CultureInfo.InvariantCulture),
            Decimal128Array a => a.GetSqlDecimal(index)!.Value.ToString(),
            Date32Array a => a.GetDateOnly(index)!.Value.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
            TimestampArray a => Iso(a.GetTimestamp(index)!.Value),
            ListArray or StructArray => NestedJson(array, index),
            Int8Array a => a.GetValue(index)!.Value.ToString(CultureInfo.InvariantCulture),
            Int16Array a => a.GetValue(index)!.Value.ToString(CultureInfo.InvariantCulture),
            Int32Array a => a.GetValue(index)!.Value.ToString(CultureInfo.InvariantCulture),
            Int64Array a => a.GetValue(index)!.Value.ToString(CultureInfo.InvariantCulture),
            UInt8Array a => a.GetValue(index)!.Value.ToString(CultureInfo.InvariantCulture),
            UInt16Array a => a.GetValue(index)!.Value.ToString(CultureInfo.InvariantCulture),
            UInt32Array a => a.GetValue(index)!.Value.ToString(CultureInfo.InvariantCulture),
            UInt64Array a => a.GetValue(index)!.Value.ToString(CultureInfo.InvariantCulture),
            _ => throw new NotSupportedException(array.Data.DataType.Name), // CheckTypes refused it before the first row.
        };
    }

    private const string IsoFormat = "yyyy-MM-dd'T'HH:mm:ss.FFFFFF'Z'";

    protected static string Iso(DateTimeOffset time) => time.UtcDateTime.ToString(IsoFormat, CultureInfo.InvariantCulture);

    /// <summary><see cref="Iso"/> as UTF-8 into <paramref name="utf8"/> (at least 28 bytes); returns its length.</summary>
    protected static int FormatIso(DateTimeOffset time, Span<byte> utf8) =>
        time.UtcDateTime.TryFormat(utf8, out var written, IsoFormat, CultureInfo.InvariantCulture) ? written : throw new InvalidOperationException("An ISO time is at most 28 bytes.");

    private static string NestedJson(IArrowArray array, int index)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer)) WriteJson(json, array, index);
        return Encoding.UTF8.GetString(buffer.ToArray());
    }
}

internal sealed class JsonResultWriter(CountingStream output) : ResultWriter(output)
{
    private readonly Utf8JsonWriter _json = new(output);
    private JsonEncodedText[] _names = [];

    public override void Begin(Schema schema)
    {
        // Escaped once, not per row.
        _names = schema.FieldsList.Select(f => JsonEncodedText.Encode(f.Name)).ToArray();
        _json.WriteStartArray();
    }

    public override int Write(RecordBatch batch, int count, long byteCap)
    {
        var row = 0;
        for (; row < count && _json.BytesCommitted + _json.BytesPending < byteCap; row++)
        {
            _json.WriteStartObject();
            for (var column = 0; column < batch.ColumnCount; column++)
            {
                _json.WritePropertyName(_names[column]);
                WriteJson(_json, batch.Column(column), row);
            }
            _json.WriteEndObject();
        }
        _json.Flush();
        return row;
    }

    public override void End()
    {
        _json.WriteEndArray();
        _json.Flush();
    }

    public override void Dispose() => _json.Dispose();
}

/// <summary>
/// RFC 4180 CSV written straight as UTF-8 into a buffer that goes out in large writes: DuckDB's text as its bytes,
/// numbers and times formatted into the buffer, no string per value. A field is quoted when it holds a comma, a quote or
/// a line break, or is an empty text (so that it differs from a null, which is nothing at all).
/// </summary>
internal sealed class CsvResultWriter(CountingStream output) : ResultWriter(output)
{
    private const int WriteAt = 64 * 1024;
    private static readonly SearchValues<byte> Special = SearchValues.Create(",\"\r\n"u8);
    private readonly ArrayBufferWriter<byte> _pending = new(WriteAt + 4096);

    public override void Begin(Schema schema)
    {
        for (var column = 0; column < schema.FieldsList.Count; column++)
        {
            if (column > 0) Append(","u8);
            Field(Encoding.UTF8.GetBytes(schema.FieldsList[column].Name));
        }
        Append("\r\n"u8);
    }

    public override int Write(RecordBatch batch, int count, long byteCap)
    {
        var row = 0;
        for (; row < count && Output.Written + _pending.WrittenCount < byteCap; row++)
        {
            for (var column = 0; column < batch.ColumnCount; column++)
            {
                if (column > 0) Append(","u8);
                Value(batch.Column(column), row);
            }
            Append("\r\n"u8);
            if (_pending.WrittenCount >= WriteAt) WritePending();
        }
        WritePending();
        return row;
    }

    public override void End()
    {
        WritePending();
        Output.Flush();
    }

    private void WritePending()
    {
        Output.Write(_pending.WrittenSpan);
        _pending.ResetWrittenCount();
    }

    // Numbers, booleans, dates and times never hold a comma, a quote or a line break: they go out unquoted.
    private void Value(IArrowArray array, int index)
    {
        if (array.IsNull(index)) return;
        switch (array)
        {
            case StringArray a: Utf8Text(a.GetBytes(index), a, index); break;
            case StringViewArray a: Utf8Text(a.GetBytes(index), a, index); break;
            case BooleanArray a: Append(a.GetValue(index)!.Value ? "true"u8 : "false"u8); break;
            case DoubleArray a: Format(a.GetValue(index)!.Value, "R"); break;
            case FloatArray a: Format(a.GetValue(index)!.Value, "R"); break;
            case Date32Array a: Format(a.GetDateOnly(index)!.Value, "yyyy-MM-dd"); break;
            case TimestampArray a: _pending.Advance(FormatIso(a.GetTimestamp(index)!.Value, _pending.GetSpan(32))); break;
            case Int8Array a: Format(a.GetValue(index)!.Value); break;
            case Int16Array a: Format(a.GetValue(index)!.Value); break;
            case Int32Array a: Format(a.GetValue(index)!.Value); break;
            case Int64Array a: Format(a.GetValue(index)!.Value); break;
            case UInt8Array a: Format(a.GetValue(index)!.Value); break;
            case UInt16Array a: Format(a.GetValue(index)!.Value); break;
            case UInt32Array a: Format(a.GetValue(index)!.Value); break;
            case UInt64Array a: Format(a.GetValue(index)!.Value); break;
            // Decimals and nested values (JSON text) are rare: through their text.
            default: Field(Encoding.UTF8.GetBytes(ResultWriter.Text(array, index)!)); break;
        }
    }

    // DuckDB's text is UTF-8; bytes that are not (which DuckDB does not produce) become U+FFFD, as through a .NET string.
    private void Utf8Text(ReadOnlySpan<byte> utf8, IArrowArray array, int index)
    {
        if (System.Text.Unicode.Utf8.IsValid(utf8)) Field(utf8);
        else Field(Encoding.UTF8.GetBytes(ResultWriter.Text(array, index)!));
    }

    private void Field(ReadOnlySpan<byte> value)
    {
        if (value.Length > 0 && !value.ContainsAny(Special))
        {
            Append(value);
            return;
        }
        Append("\""u8);
        for (int quote; (quote = value.IndexOf((byte)'"')) >= 0; value = value[(quote + 1)..])
        {
            Append(value[..(quote + 1)]);
            Append("\""u8);
        }
        Append(value);
        Append("\""u8);
    }

    private void Format<T>(T value, string? format = null) where T : IUtf8SpanFormattable
    {
        if (!value.TryFormat(_pending.GetSpan(64), out var written, format, CultureInfo.InvariantCulture))
            throw new InvalidOperationException($"A {typeof(T).Name} takes more than 64 bytes.");
        _pending.Advance(written);
    }

    private void Append(ReadOnlySpan<byte> bytes) => _pending.Write(bytes);
}

internal sealed class ArrowResultWriter(CountingStream output) : ResultWriter(output)
{
    private ArrowStreamWriter? _writer;

    public override void Begin(Schema schema)
    {
        _writer = new ArrowStreamWriter(Output, schema, leaveOpen: true);
        _writer.WriteStart();
    }

    public override int Write(RecordBatch batch, int count, long byteCap) => WriteChunks(batch, count, byteCap, _writer!.WriteRecordBatch);

    public override void End() => _writer!.WriteEnd();

    public override void Dispose() => _writer?.Dispose();
}

internal sealed class ParquetResultWriter(CountingStream output) : ResultWriter(output)
{
    private ParquetSharp.IO.ManagedOutputStream? _stream;
    private ParquetSharp.Arrow.FileWriter? _writer;
    private ParquetSharp.WriterProperties? _properties;

    public override void Begin(Schema schema)
    {
        _stream = new ParquetSharp.IO.ManagedOutputStream(Output, leaveOpen: true);
        _properties = new ParquetSharp.WriterPropertiesBuilder().Compression(ParquetSharp.Compression.Zstd).CreatedBy("depin-pipeline marketplace").Build();
        _writer = new ParquetSharp.Arrow.FileWriter(_stream, schema, _properties);
    }

    // Each chunk is a row group of its own, so its bytes are out (and counted) before the next chunk is considered.
    public override int Write(RecordBatch batch, int count, long byteCap) => WriteChunks(batch, count, byteCap, chunk => _writer!.WriteRecordBatch(chunk));

    public override void End() => _writer!.Close();

    public override void Dispose()
    {
        _writer?.Dispose();
        _properties?.Dispose();
        _stream?.Dispose();
    }
}

/// <summary>A write-only stream that counts what passes through it.</summary>
internal sealed class CountingStream(Stream inner) : Stream
{
    public long Written { get; private set; }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => Written;
    public override long Position { get => Written; set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        inner.Write(buffer);
        Written += buffer.Length;
    }

    public override void Flush() => inner.Flush();
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
