using Apache.Arrow;
using DuckDB.NET.Data;
using Pipeline.Core.Envelope;
using Pipeline.Core.Events;
using Pipeline.Projections.Lake;
using Pipeline.Registry;
using V = Pipeline.Core.Signals.SignalCatalog.Vehicle;

namespace Pipeline.Tests.Integration.Projections;

/// <summary>
/// Issue 16: compaction merges files already in file order a batch at a time instead of sorting the whole partition in
/// memory. Read back by DuckDB, the merged file has exactly the rows, the order and the row groups' statistics of the
/// whole-partition sort it replaced.
/// </summary>
[Trait("Category", "Integration")]
public sealed class FileMergeTests : IDisposable
{
    private static readonly DateTimeOffset Morning = new(2026, 11, 23, 1, 0, 0, TimeSpan.Zero);
    private static readonly Schema Schema = LakeDatasets.Vehicle.Schema;
    private readonly string _folder = Directory.CreateTempSubdirectory("depin-merge-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>
    /// Readings of 60 cars in event order (with devices' clocks running behind it at times, and signals missing), as
    /// rows of the given events.
    /// </summary>
    private static RecordBatch Rows(long from, int count)
    {
        var random = new Random((int)from);
        var devices = Enumerable.Range(0, 60).ToDictionary(i => $"0x{i * 7919:x40}", i => new Device { Id = $"0x{i * 7919:x40}", Kind = DeviceKind.Vehicle });
        var ids = devices.Keys.ToArray();
        var events = Enumerable.Range(0, count).Select(i => from + i).Select(sequence => new FeedEvent(sequence, ids[random.Next(ids.Length)],
            new ReadingAccepted($"0x{sequence:x64}", sequence, Morning.AddSeconds(sequence / 10 - random.Next(0, 30)), Morning.AddSeconds(sequence / 10),
                random.Next(5) == 0 ? new Dictionary<string, double> { [V.Odometer] = sequence } : new Dictionary<string, double> { [V.Speed] = random.Next(0, 130), [V.Odometer] = sequence },
                0, sequence)));
        return new LakeBuilder(locationDecimals: 2).Build(events, devices).Single().Rows.ToRecordBatch();
    }

    private string Write(string name, params RecordBatch[] batches)
    {
        var path = Path.Combine(_folder, name);
        ParquetFiles.Write(path, Schema, batches);
        return path;
    }

    [Fact]
    public async Task ManySortedFiles_MergedABatchAtATime_HoldTheRowsOrderAndStatisticsOfTheWholePartitionSorted()
    {
        // A day as compaction meets it: an earlier compaction's file (read in several batches), then rounds' files, each
        // sorted as rounds now write them, of all sizes.
        var inputs = new List<string> { Write("merged.parquet", FileOrder.Sort(Schema, [Rows(1, 20_000)])) };
        var next = 20_001L;
        foreach (var size in new[] { 1, 7, 300, 8_192, 8_193, 2, 1_000 })
        {
            inputs.Add(Write($"round-{next}.parquet", FileOrder.Sort(Schema, [Rows(next, size)])));
            next += size;
        }
        // Files from before rounds were sorted: one out of order from its first row, one only after its first batch.
        inputs.Add(Write($"round-{next}.parquet", Rows(next, 5_000)));
        next += 5_000;
        inputs.Add(Write($"round-{next}.parquet", FileOrder.Sort(Schema, [Rows(next, 9_000)]), FileOrder.Sort(Schema, [Rows(next + 9_000, 3_000)])));

        var merged = Path.Combine(_folder, "out", "merged.parquet");
        await FileMerge.WriteAsync(merged, Schema, inputs);
        var whole = new List<RecordBatch>();
        foreach (var input in inputs) whole.AddRange(await ParquetFiles.ReadAsync(input));
        var sorted = Path.Combine(_folder, "out", "sorted.parquet");
        ParquetFiles.Write(sorted, Schema, [FileOrder.Sort(Schema, whole)]);
        whole.ForEach(b => b.Dispose());

        using var duckdb = new DuckDBConnection("DataSource=:memory:");
        duckdb.Open();
        Assert.Equal(next + 12_000 - 1, Scalar(duckdb, $"SELECT count(*) FROM read_parquet('{merged}')"));
        Assert.Equal(next + 12_000 - 1, Scalar(duckdb, $"SELECT count(DISTINCT event_seq) FROM read_parquet('{merged}')"));
        // Row by row at the same place in each file; NULLs compare equal in EXCEPT.
        Assert.Equal(0, Scalar(duckdb, Difference($"SELECT * FROM read_parquet('{merged}', file_row_number = true)", $"SELECT * FROM read_parquet('{sorted}', file_row_number = true)")));
        const string statistics = "SELECT row_group_id, row_group_num_rows, path_in_schema, stats_min_value, stats_max_value, stats_null_count FROM parquet_metadata";
        Assert.Equal(0, Scalar(duckdb, Difference($"{statistics}('{merged}')", $"{statistics}('{sorted}')")));
    }

    private static string Difference(string left, string right) =>
        $"SELECT count(*) FROM (({left} EXCEPT ALL {right}) UNION ALL ({right} EXCEPT ALL {left}))";

    private static long Scalar(DuckDBConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(command.ExecuteScalar());
    }
}
