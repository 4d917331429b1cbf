using System.Runtime.InteropServices;
using Apache.Arrow;
using Apache.Arrow.Types;

namespace Pipeline.Projections.Lake;

/// <summary>
/// The order of rows inside a lake file: by device (or station), then time, then event sequence (unique, so the order
/// is total and a file's rows are the same whichever order its inputs came in). A device's rows sit together, so each
/// row group's min/max of device and time are narrow and DuckDB skips the groups a filter on them rules out.
/// </summary>
public static class FileOrder
{
    /// <summary>A row's place in file order; devices compare ordinally, as <see cref="Sort"/> ranks them.</summary>
    public readonly record struct Key(string Device, long Time, long Sequence) : IComparable<Key>
    {
        public int CompareTo(Key other) => string.CompareOrdinal(Device, other.Device) is var device and not 0 ? device
            : Time != other.Time ? Time.CompareTo(other.Time) : Sequence.CompareTo(other.Sequence);
    }

    /// <summary>The columns of a row's key: device (or station) first, then device time (received for rejections), event sequence.</summary>
    public static (int Device, int Time, int Sequence) KeyColumns(Schema schema) =>
        (0, schema.GetFieldIndex(schema.FieldsList.Any(f => f.Name == "device_time") ? "device_time" : "received_at"), schema.GetFieldIndex("event_seq"));

    /// <summary>The rows of <paramref name="batches"/> in file order, as one record batch of <paramref name="schema"/>.</summary>
    public static RecordBatch Sort(Schema schema, IReadOnlyList<RecordBatch> batches)
    {
        var (keys, located) = Keys(schema, batches);
        System.Array.Sort(keys);
        return Take(schema, keys.Select(k => located[k.Row]).ToList());
    }

    /// <summary>
    /// <paramref name="batch"/>'s rows in file order: the batch itself when they already are (a round of one device,
    /// events stored device after device), otherwise a sorted copy, and the batch is disposed. Either way the result
    /// is the caller's.
    /// </summary>
    public static RecordBatch InOrder(Schema schema, RecordBatch batch)
    {
        var (keys, located) = Keys(schema, [batch]);
        if (IsAscending(keys)) return batch;
        using (batch)
        {
            System.Array.Sort(keys);
            return Take(schema, keys.Select(k => located[k.Row]).ToList());
        }
    }

    private static bool IsAscending(RankedKey[] keys)
    {
        for (var i = 1; i < keys.Length; i++)
            if (keys[i - 1].CompareTo(keys[i]) > 0) return false;
        return true;
    }

    /// <summary>Every row's key, rows numbered across the batches in turn, and where each numbered row is.</summary>
    private static (RankedKey[] Keys, (RecordBatch Batch, int Row)[] Located) Keys(Schema schema, IReadOnlyList<RecordBatch> batches)
    {
        var count = batches.Sum(b => b.Length);
        var located = new (RecordBatch Batch, int Row)[count];
        var devices = new string[count];
        var (_, timeColumn, sequenceColumn) = KeyColumns(schema);
        var times = new long[count];
        var sequences = new long[count];
        var start = 0;
        foreach (var batch in batches)
        {
            var column = (StringArray)batch.Column(0);
            var device = "";
            var deviceBytes = ReadOnlySpan<byte>.Empty;
            ((PrimitiveArray<long>)batch.Column(timeColumn)).Values.CopyTo(times.AsSpan(start));
            ((PrimitiveArray<long>)batch.Column(sequenceColumn)).Values.CopyTo(sequences.AsSpan(start));
            for (var r = 0; r < batch.Length; r++)
            {
                // A device's rows mostly come in runs: one string per run, not one per row.
                var bytes = column.GetBytes(r);
                if (r == 0 || !bytes.SequenceEqual(deviceBytes))
                {
                    device = column.GetString(r);
                    deviceBytes = bytes;
                }
                devices[start + r] = device;
                located[start + r] = (batch, r);
            }
            start += batch.Length;
        }
        // Devices by rank in ordinal order, so the sort compares numbers only.
        var ranks = devices.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).Select((device, rank) => (device, rank)).ToDictionary(p => p.device, p => p.rank, StringComparer.Ordinal);
        var keys = new RankedKey[count];
        for (var i = 0; i < count; i++) keys[i] = new RankedKey(ranks[devices[i]], times[i], sequences[i], i);
        return (keys, located);
    }

    private readonly record struct RankedKey(int Device, long Time, long Sequence, int Row) : IComparable<RankedKey>
    {
        public int CompareTo(RankedKey other) => Device != other.Device ? Device.CompareTo(other.Device)
            : Time != other.Time ? Time.CompareTo(other.Time) : Sequence.CompareTo(other.Sequence);
    }

    /// <summary>The given rows, each a row of some batch of <paramref name="schema"/>, copied in this order into one record batch.</summary>
    public static RecordBatch Take(Schema schema, IReadOnlyList<(RecordBatch Batch, int Row)> rows)
    {
        var columns = new IArrowArray[schema.FieldsList.Count];
        for (var c = 0; c < columns.Length; c++)
        {
            var type = schema.GetFieldByIndex(c).DataType;
            columns[c] = type is StringType ? TakeStrings(rows, c) : TakeFixedWidth(type, rows, c);
        }
        return new RecordBatch(schema, columns, rows.Count);
    }

    // Rows mostly come batch after batch (one batch when a round is sorted), so each column's buffers are looked up once
    // per change of batch, not per value: that lookup (a native buffer's span) cost more than the copy.

    private static StringArray TakeStrings(IReadOnlyList<(RecordBatch Batch, int Row)> rows, int column)
    {
        var offsetBytes = new byte[(rows.Count + 1) * sizeof(int)];
        var offsets = MemoryMarshal.Cast<byte, int>(offsetBytes.AsSpan());
        var bitmap = new byte[(rows.Count + 7) / 8];
        var nulls = 0;
        RecordBatch? current = null;
        StringArray source = null!;
        for (var i = 0; i < rows.Count; i++)
        {
            var (batch, row) = rows[i];
            if (!ReferenceEquals(batch, current)) (current, source) = (batch, (StringArray)batch.Column(column));
            if (source.IsValid(row)) bitmap[i >> 3] |= (byte)(1 << (i & 7));
            else nulls++;
            offsets[i + 1] = checked(offsets[i] + source.GetValueLength(row));
        }
        var values = new byte[offsets[^1]];
        current = null;
        for (var i = 0; i < rows.Count; i++)
        {
            var (batch, row) = rows[i];
            if (!ReferenceEquals(batch, current)) (current, source) = (batch, (StringArray)batch.Column(column));
            source.GetBytes(row).CopyTo(values.AsSpan(offsets[i]));
        }
        var validity = nulls == 0 ? ArrowBuffer.Empty : Native(bitmap);
        return new StringArray(new ArrayData(StringType.Default, rows.Count, nulls, 0, [validity, Native(offsetBytes), Native(values)]));
    }

    /// <summary>Int64, timestamp and double columns alike: 8-byte values copied as they are, nulls kept.</summary>
    private static IArrowArray TakeFixedWidth(IArrowType type, IReadOnlyList<(RecordBatch Batch, int Row)> rows, int column)
    {
        if (type is not (Int64Type or TimestampType or DoubleType)) throw new NotSupportedException(type.Name);
        var buffer = new byte[rows.Count * sizeof(long)];
        var taken = MemoryMarshal.Cast<byte, long>(buffer.AsSpan());
        var bitmap = new byte[(rows.Count + 7) / 8];
        var nulls = 0;
        RecordBatch? current = null;
        IArrowArray source = null!;
        var values = ReadOnlySpan<long>.Empty;
        for (var i = 0; i < rows.Count; i++)
        {
            var (batch, row) = rows[i];
            if (!ReferenceEquals(batch, current))
            {
                (current, source) = (batch, batch.Column(column));
                values = MemoryMarshal.Cast<byte, long>(source.Data.Buffers[1].Span)[source.Offset..];
            }
            taken[i] = values[row];
            if (source.NullCount == 0 || source.IsValid(row)) bitmap[i >> 3] |= (byte)(1 << (i & 7));
            else nulls++;
        }
        var validity = nulls == 0 ? ArrowBuffer.Empty : Native(bitmap);
        return ArrowArrayFactory.BuildArray(new ArrayData(type, rows.Count, nulls, 0, [validity, Native(buffer)]));
    }

    /// <summary>
    /// Bytes copied to native memory (Arrow's default allocator): only such buffers can be handed to DuckDB through the
    /// Arrow C interface (compaction's merge, <see cref="DuckParquet"/>); a managed array's could move.
    /// </summary>
    private static ArrowBuffer Native(byte[] bytes) => new ArrowBuffer.Builder<byte>(bytes.Length).Append(bytes).Build();
}
