using Apache.Arrow;

namespace Pipeline.Projections.Lake;

/// <summary>
/// Compaction's merge: files each in <see cref="FileOrder"/> become one file in file order, read a batch at a time and
/// written by DuckDB as the batches are made (<see cref="DuckParquet"/>), so that it holds a batch of each input and
/// the writer's row group, however large the partition (issue 16: merging whole partitions in memory made the
/// projector's memory follow the day's size; sorting them in DuckDB ran out of its memory).
/// </summary>
public static class FileMerge
{
    /// <summary>
    /// Rows read from an input, and written to the output, at a time. A divisor of the row group's size: the output's row
    /// groups fall where writing all the rows at once puts them.
    /// </summary>
    private const int BatchRows = 8_192;

    /// <summary>Writes the rows of <paramref name="inputs"/> to <paramref name="output"/> in file order; returns its SHA-256.</summary>
    public static async Task<string> WriteAsync(string output, Schema schema, IReadOnlyList<string> inputs)
    {
        // A file found out of order only after its first batch (a round's file written before rounds were sorted) is
        // sorted alone, and the merge begins again.
        var unsorted = new HashSet<string>();
        while (true)
        {
            try
            {
                return await MergeAsync(output, schema, inputs, unsorted);
            }
            catch (NotInFileOrderException e) when (unsorted.Add(e.Path))
            {
            }
        }
    }

    private static async Task<string> MergeAsync(string output, Schema schema, IReadOnlyList<string> inputs, IReadOnlySet<string> unsorted)
    {
        var runs = new List<Run>();
        var consumed = new List<RecordBatch>();
        try
        {
            foreach (var input in inputs)
                if (await Run.OpenAsync(input, schema, unsorted.Contains(input)) is { } run) runs.Add(run);
            return await DuckParquet.WriteAsync(output, schema, MergedAsync(schema, runs, consumed));
        }
        finally
        {
            foreach (var run in runs) await run.DisposeAsync();
            consumed.ForEach(b => b.Dispose());
        }
    }

    /// <summary>The runs' rows in file order, in batches of <see cref="BatchRows"/>.</summary>
    private static async IAsyncEnumerable<RecordBatch> MergedAsync(Schema schema, List<Run> runs, List<RecordBatch> consumed)
    {
        // Ties (impossible: the key ends with the event sequence) would go to the earlier input.
        var next = new PriorityQueue<int, (FileOrder.Key Key, int Run)>();
        for (var i = 0; i < runs.Count; i++) next.Enqueue(i, (runs[i].Key, i));
        var chunk = new List<(RecordBatch Batch, int Row)>(BatchRows);
        while (next.TryDequeue(out var i, out _))
        {
            var run = runs[i];
            bool more;
            // A run's rows are taken while they come before every other run's next row.
            do
            {
                chunk.Add((run.Batch, run.Row));
                if (chunk.Count == BatchRows) yield return Take(schema, chunk, consumed);
                more = await run.MoveNextAsync(consumed);
            }
            while (more && (!next.TryPeek(out _, out var other) || (run.Key, i).CompareTo(other) < 0));
            if (more) next.Enqueue(i, (run.Key, i));
        }
        if (chunk.Count > 0) yield return Take(schema, chunk, consumed);
    }

    /// <summary>The chunk's rows copied out; then the input batches read past are done with.</summary>
    private static RecordBatch Take(Schema schema, List<(RecordBatch Batch, int Row)> chunk, List<RecordBatch> consumed)
    {
        var batch = FileOrder.Take(schema, chunk);
        chunk.Clear();
        // Their buffers are native memory (ParquetSharp's); left to the finalizer, they piled up.
        consumed.ForEach(b => b.Dispose());
        consumed.Clear();
        return batch;
    }

    /// <summary>One input, read a batch at a time, at its current row and that row's key.</summary>
    private sealed class Run : IAsyncDisposable
    {
        private readonly string _path;
        private readonly ParquetFiles.BatchReader? _reader;
        private readonly (int Device, int Time, int Sequence) _columns;
        private string? _device;
        private byte[] _deviceBytes = [];
        private bool _ended;

        private Run(string path, Schema schema, ParquetFiles.BatchReader? reader, RecordBatch first)
        {
            (_path, _reader, _columns, Batch) = (path, reader, FileOrder.KeyColumns(schema), first);
            Key = KeyAt(0);
        }

        public RecordBatch Batch { get; private set; }
        public int Row { get; private set; }
        public FileOrder.Key Key { get; private set; }

        /// <summary>
        /// Opens <paramref name="path"/> at its first row (null when it has none). A file whose first batch is out of
        /// order, or that <paramref name="sortAlone"/> says is, is read whole and sorted: a round's rows at most.
        /// </summary>
        public static async Task<Run?> OpenAsync(string path, Schema schema, bool sortAlone)
        {
            var reader = ParquetFiles.OpenRead(path, BatchRows);
            var first = await reader.ReadNextAsync();
            if (first is null || first.Length == 0)
            {
                first?.Dispose();
                await reader.DisposeAsync();
                return null;
            }
            if (!sortAlone && IsSorted(schema, first)) return new Run(path, schema, reader, first);
            first.Dispose();
            await reader.DisposeAsync();
            var batches = await ParquetFiles.ReadAsync(path);
            try
            {
                return new Run(path, schema, null, FileOrder.Sort(schema, batches));
            }
            finally
            {
                batches.ForEach(b => b.Dispose());
            }
        }

        private static bool IsSorted(Schema schema, RecordBatch batch)
        {
            var (device, time, sequence) = FileOrder.KeyColumns(schema);
            var (devices, times, sequences) = ((StringArray)batch.Column(device), (PrimitiveArray<long>)batch.Column(time), (PrimitiveArray<long>)batch.Column(sequence));
            for (var r = 1; r < batch.Length; r++)
            {
                var before = new FileOrder.Key(devices.GetString(r - 1), times.Values[r - 1], sequences.Values[r - 1]);
                if (before.CompareTo(new FileOrder.Key(devices.GetString(r), times.Values[r], sequences.Values[r])) > 0) return false;
            }
            return true;
        }

        /// <summary>
        /// Moves to the next row, reading the next batch when this one ends (this one then goes to
        /// <paramref name="consumed"/>: rows of it may still wait to be copied); false at the end of the file.
        /// </summary>
        public async ValueTask<bool> MoveNextAsync(List<RecordBatch> consumed)
        {
            if (++Row == Batch.Length)
            {
                consumed.Add(Batch);
                if (_reader is null || await _reader.ReadNextAsync() is not { Length: > 0 } batch)
                {
                    _ended = true;
                    return false;
                }
                (Batch, Row) = (batch, 0);
            }
            var key = KeyAt(Row);
            if (key.CompareTo(Key) < 0) throw new NotInFileOrderException(_path);
            Key = key;
            return true;
        }

        private FileOrder.Key KeyAt(int row)
        {
            // A device's rows sit together: one string per device, not one per row.
            var bytes = ((StringArray)Batch.Column(_columns.Device)).GetBytes(row);
            if (_device is null || !bytes.SequenceEqual(_deviceBytes))
                (_device, _deviceBytes) = (((StringArray)Batch.Column(_columns.Device)).GetString(row), bytes.ToArray());
            return new FileOrder.Key(_device, ((PrimitiveArray<long>)Batch.Column(_columns.Time)).Values[row], ((PrimitiveArray<long>)Batch.Column(_columns.Sequence)).Values[row]);
        }

        public async ValueTask DisposeAsync()
        {
            if (!_ended) Batch.Dispose();
            if (_reader is not null) await _reader.DisposeAsync();
        }
    }

    private sealed class NotInFileOrderException(string path) : Exception($"{path} is not in file order.")
    {
        public string Path { get; } = path;
    }
}
