using Apache.Arrow;
using DuckDB.NET.Data;

namespace Pipeline.Projections.Lake;

/// <summary>
/// Compaction's merge: files of a partition become one file in <see cref="FileOrder"/>, written by DuckDB. Arrow's
/// writer (ParquetSharp) ends a data page every 20,000 rows and nothing lets us change it; DuckDB writes a column
/// chunk's rows as one page, and its reader scans such files faster (issue 16, README "The lake's speed").
/// </summary>
public static class FileMerge
{
    /// <summary>
    /// DuckDB's memory for one merge (issue 16: compaction's extra memory in the projector stays bounded whatever the
    /// partition's size); a sort larger than this spills to a folder beside the output, removed afterwards. At 64 MB a
    /// merge of 500,000 vehicle rows ran out of memory; 128 MB merged the largest compaction (16 files of 200,000 rows).
    /// </summary>
    private const string MemoryLimit = "128MB";

    /// <summary>Writes the rows of <paramref name="inputs"/> to <paramref name="output"/> in file order; returns its SHA-256.</summary>
    public static string Write(string output, Schema schema, IReadOnlyList<string> inputs)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(output)!);
        var spill = output + ".spill";
        try
        {
            using (var duckdb = new DuckDBConnection("DataSource=:memory:"))
            {
                duckdb.Open();
                // One thread: the projector shares its cores, and one writer makes row groups of exactly RowGroupRows.
                LakeCatalog.Execute(duckdb, $"SET threads = 1; SET memory_limit = '{MemoryLimit}'; SET temp_directory = {LakeCatalog.Quote(spill)}");
                var (device, time, sequence) = FileOrder.KeyColumns(schema);
                var columns = string.Join(", ", schema.FieldsList.Select(f => Name(f.Name)));
                // Devices order by their bytes (DuckDB's binary collation), as FileOrder's ordinal comparison does for
                // the lake's ASCII addresses. Timestamps stay TIMESTAMP WITH TIME ZONE: written UTC-adjusted micros.
                LakeCatalog.Execute(duckdb, $"""
                    COPY (SELECT {columns} FROM read_parquet([{string.Join(", ", inputs.Select(LakeCatalog.Quote))}])
                          ORDER BY {Name(schema.FieldsList[device].Name)}, {Name(schema.FieldsList[time].Name)}, {Name(schema.FieldsList[sequence].Name)})
                    TO {LakeCatalog.Quote(output)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ParquetFiles.RowGroupRows})
                    """);
            }
            return ParquetFiles.Sync(output);
        }
        catch
        {
            File.Delete(output);
            throw;
        }
        finally
        {
            if (Directory.Exists(spill)) Directory.Delete(spill, recursive: true);
        }
    }

    private static string Name(string column) => $"\"{column.Replace("\"", "\"\"")}\"";
}
