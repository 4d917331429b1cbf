using System.Runtime.InteropServices;
using Apache.Arrow;
using Apache.Arrow.Types;

namespace Pipeline.Projections.Lake;

/// <summary>
/// The order of rows inside a compacted file: by device (or station), then time, then event sequence (unique, so the
/// order is total and a file's rows are the same whichever order its inputs came in). A device's rows sit together,
/// so each row group's min/max of device and time are narrow and DuckDB skips the groups a filter on them rules out.
/// </summary>
public static class FileOrder
{
    /// <summary>The rows of <paramref name="batches"/> in file order, as one record batch of <paramref name="schema"/>.</summary>
    public static RecordBatch Sort(Schema schema, IReadOnlyList<RecordBatch> batches)
    {
        var count = batches.Sum(b => b.Length);
        // Rows are numbered across the batches in turn; the keys are gathered once, then the numbers sorted by them.
        var devices = new string[count];
        var times = Concatenate(batches, schema.GetFieldIndex(schema.FieldsList.Any(f => f.Name == "device_time") ? "device_time" : "received_at"), out _);
        var sequences = Concatenate(batches, schema.GetFieldIndex("event_seq"), out _);
        var start = 0;
        foreach (var batch in batches)
        {
            var column = (StringArray)batch.Column(0);
            var device = "";
            var deviceBytes = ReadOnlySpan<byte>.Empty;
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
            }
            start += batch.Length;
        }
        // Devices by rank in ordinal order, so the sort compares numbers only.
        var ranks = devices.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).Select((device, rank) => (device, rank)).ToDictionary(p => p.device, p => p.rank, StringComparer.Ordinal);
        var keys = new Key[count];
        for (var i = 0; i < count; i++) keys[i] = new Key(ranks[devices[i]], times[i], sequences[i], i);
        System.Array.Sort(keys);
        var order = keys.Select(k => k.Row).ToArray();

        var columns = new IArrowArray[schema.FieldsList.Count];
        for (var c = 0; c < columns.Length; c++)
        {
            var type = schema.GetFieldByIndex(c).DataType;
            columns[c] = type is StringType ? TakeStrings(batches, c, order) : TakeFixedWidth(type, batches, c, order);
        }
        return new RecordBatch(schema, columns, count);
    }

    private readonly record struct Key(int Device, long Time, long Sequence, int Row) : IComparable<Key>
    {
        public int CompareTo(Key other) => Device != other.Device ? Device.CompareTo(other.Device)
            : Time != other.Time ? Time.CompareTo(other.Time) : Sequence.CompareTo(other.Sequence);
    }

    private static IArrowArray TakeStrings(IReadOnlyList<RecordBatch> batches, int column, int[] order)
    {
        // Where each row lies: its batch and its index there.
        var (sources, rows) = (new StringArray[order.Length], new int[order.Length]);
        var start = 0;
        foreach (var batch in batches)
        {
            for (var r = 0; r < batch.Length; r++) (sources[start + r], rows[start + r]) = ((StringArray)batch.Column(column), r);
            start += batch.Length;
        }
        var builder = new StringArray.Builder();
        foreach (var i in order)
        {
            if (sources[i].IsNull(rows[i])) builder.AppendNull();
            else builder.Append(sources[i].GetBytes(rows[i]));
        }
        return builder.Build();
    }

    /// <summary>Int64, timestamp and double columns alike: 8-byte values copied as they are, nulls kept.</summary>
    private static IArrowArray TakeFixedWidth(IArrowType type, IReadOnlyList<RecordBatch> batches, int column, int[] order)
    {
        if (type is not (Int64Type or TimestampType or DoubleType)) throw new NotSupportedException(type.Name);
        var values = Concatenate(batches, column, out var valid);
        var buffer = new byte[order.Length * sizeof(long)];
        var taken = MemoryMarshal.Cast<byte, long>(buffer.AsSpan());
        var bitmap = new byte[(order.Length + 7) / 8];
        var nulls = 0;
        for (var i = 0; i < order.Length; i++)
        {
            taken[i] = values[order[i]];
            if (valid[order[i]]) bitmap[i >> 3] |= (byte)(1 << (i & 7));
            else nulls++;
        }
        var validity = nulls == 0 ? ArrowBuffer.Empty : new ArrowBuffer(bitmap);
        return ArrowArrayFactory.BuildArray(new ArrayData(type, order.Length, nulls, 0, [validity, new ArrowBuffer(buffer)]));
    }

    /// <summary>An 8-byte column of every batch, one after the other, and whether each value is there (not null).</summary>
    private static long[] Concatenate(IReadOnlyList<RecordBatch> batches, int column, out bool[] valid)
    {
        var values = new long[batches.Sum(b => b.Length)];
        valid = new bool[values.Length];
        var start = 0;
        foreach (var batch in batches)
        {
            var array = batch.Column(column);
            MemoryMarshal.Cast<byte, long>(array.Data.Buffers[1].Span).Slice(array.Offset, batch.Length).CopyTo(values.AsSpan(start));
            for (var r = 0; r < batch.Length; r++) valid[start + r] = array.NullCount == 0 || array.IsValid(r);
            start += batch.Length;
        }
        return values;
    }
}
