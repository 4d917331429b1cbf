using System.Security.Cryptography;
using Apache.Arrow;
using ParquetSharp;

namespace Pipeline.Projections.Lake;

/// <summary>
/// Arrow record batches into Parquet files (ParquetSharp, zstd, min/max statistics on every column) and back, with the
/// files' SHA-256.
/// </summary>
public static class ParquetFiles
{
    /// <summary>
    /// Rows per row group: DuckDB's own size. DuckDB hands row groups to its threads, so one large group is scanned on
    /// one core; many small ones (a compaction of many short rounds, written batch by batch) cost a setup each.
    /// </summary>
    public const int RowGroupRows = 122_880;

    /// <summary>
    /// Native memory of the readers and writers: jemalloc, which Arrow configures to return free pages from a background
    /// thread after a second, instead of the default pool, whose 1 GiB arena (mimalloc's, by its shape; transparent huge
    /// pages) kept about 100 MB resident in the projector (issue 16; what it changed is in the README).
    /// </summary>
    private static readonly MemoryPool Pool = MemoryPool.JemallocMemoryPool();

    /// <summary>
    /// A column's dictionary page at most (Parquet's default 1 MiB). While a column is dictionary-encoded the writer keeps
    /// a hash table several times its dictionary, for every column of the row group at once: at 1 MiB, writing 245,000
    /// vehicle rows of many distinct values took ~120 MB more memory than at 64 KiB (issue 16). A column with more distinct
    /// values than 64 KiB holds (8,192 doubles) is written plain instead; columns of few values (devices, coarsened
    /// positions) stay dictionary-encoded.
    /// </summary>
    private const long DictionaryPageBytes = 64 * 1024;

    private static WriterProperties Properties(Compression compression) => new WriterPropertiesBuilder()
        .MemoryPool(Pool)
        .Compression(compression)
        .DictionaryPagesizeLimit(DictionaryPageBytes)
        .MaxRowGroupLength(RowGroupRows)
        .CreatedBy("depin-pipeline lake")
        .Build();

    /// <summary>
    /// Writes batches to <paramref name="path"/> and syncs it to disk; returns its SHA-256 in hex. Each batch is disposed
    /// once written: its buffers are native memory (Arrow's allocator, or ParquetSharp's import) that would otherwise wait
    /// for the GC's finalizer, which a large heap runs seldom, so the projector's memory grew round after round.
    /// The lake's files are zstd; another <paramref name="compression"/> is for the bench's comparison.
    /// </summary>
    public static string Write(string path, Schema schema, IEnumerable<RecordBatch> batches, Compression compression = Compression.Zstd)
    {
        using (var writer = Open(path, schema, compression))
        {
            // Buffered: batches fill row groups of RowGroupRows whatever their own sizes.
            foreach (var batch in batches)
                using (batch)
                    writer.WriteBufferedRecordBatch(batch);
            writer.Close();
        }
        return Sync(path);
    }

    private static ParquetSharp.Arrow.FileWriter Open(string path, Schema schema, Compression compression)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var properties = Properties(compression);
        return new ParquetSharp.Arrow.FileWriter(path, schema, properties);
    }

    /// <summary>Syncs a written file to disk; its SHA-256 in hex.</summary>
    internal static string Sync(string path)
    {
        // .NET calls fsync only for a stream that can write; the file's pages are synced whatever handle asks.
        using var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        stream.Flush(flushToDisk: true);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>Every record batch of a file (of Arrow's default 64 Ki rows).</summary>
    public static async Task<List<RecordBatch>> ReadAsync(string path)
    {
        await using var batches = OpenRead(path, 64 * 1024);
        var result = new List<RecordBatch>();
        while (await batches.ReadNextAsync() is { } batch) result.Add(batch);
        return result;
    }

    /// <summary>
    /// A file's rows as record batches of at most <paramref name="batchRows"/>, read as they are asked for: not
    /// pre-buffered (Arrow's default reads every row group's bytes at the start), so a reader holds about a batch.
    /// </summary>
    public static BatchReader OpenRead(string path, int batchRows)
    {
        using var properties = ParquetSharp.Arrow.ArrowReaderProperties.GetDefault();
        properties.BatchSize = batchRows;
        properties.PreBuffer = false;
        using var readerProperties = ReaderProperties.WithMemoryPool(Pool);
        var reader = new ParquetSharp.Arrow.FileReader(path, readerProperties, properties);
        return new BatchReader(reader, reader.GetRecordBatchReader());
    }

    /// <summary>An open file and its stream of record batches; each batch read is the caller's to dispose.</summary>
    public sealed class BatchReader(ParquetSharp.Arrow.FileReader reader, Apache.Arrow.Ipc.IArrowArrayStream stream) : IAsyncDisposable
    {
        public ValueTask<RecordBatch?> ReadNextAsync() => stream.ReadNextRecordBatchAsync();

        public ValueTask DisposeAsync()
        {
            stream.Dispose();
            reader.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
