using System.Security.Cryptography;
using Apache.Arrow;
using ParquetSharp;

namespace Pipeline.Projections.Lake;

/// <summary>Arrow record batches into Parquet files (ParquetSharp, zstd) and back, with the files' SHA-256.</summary>
public static class ParquetFiles
{
    private static WriterProperties Properties() => new WriterPropertiesBuilder()
        .Compression(Compression.Zstd)
        .CreatedBy("depin-pipeline lake")
        .Build();

    /// <summary>
    /// Writes batches to <paramref name="path"/> and syncs it to disk; returns its SHA-256 in hex. Each batch is disposed
    /// once written: its buffers are native memory (Arrow's allocator, or ParquetSharp's import) that would otherwise wait
    /// for the GC's finalizer, which a large heap runs seldom, so the projector's memory grew round after round.
    /// </summary>
    public static string Write(string path, Schema schema, IEnumerable<RecordBatch> batches)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using (var properties = Properties())
        using (var writer = new ParquetSharp.Arrow.FileWriter(path, schema, properties))
        {
            foreach (var batch in batches)
                using (batch)
                    writer.WriteRecordBatch(batch);
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
