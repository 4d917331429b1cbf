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

    private static WriterProperties Properties(Compression compression) => new WriterPropertiesBuilder()
        .Compression(compression)
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
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using (var properties = Properties(compression))
        using (var writer = new ParquetSharp.Arrow.FileWriter(path, schema, properties))
        {
            // Buffered: batches fill row groups of RowGroupRows whatever their own sizes; each is disposed once
            // written (its native Arrow buffers would otherwise wait for the finalizer).
            foreach (var batch in batches)
                using (batch)
                    writer.WriteBufferedRecordBatch(batch);
            writer.Close();
        }
        // .NET calls fsync only for a stream that can write; the file's pages are synced whatever handle asks.
        using var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        stream.Flush(flushToDisk: true);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>Every record batch of a file, for compaction.</summary>
    public static async Task<List<RecordBatch>> ReadAsync(string path)
    {
        using var reader = new ParquetSharp.Arrow.FileReader(path);
        using var batches = reader.GetRecordBatchReader();
        var result = new List<RecordBatch>();
        while (await batches.ReadNextRecordBatchAsync() is { } batch) result.Add(batch);
        return result;
    }
}
