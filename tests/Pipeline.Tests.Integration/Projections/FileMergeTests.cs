using Apache.Arrow;
using DuckDB.NET.Data;
using Pipeline.Core.Envelope;
using Pipeline.Core.Events;
using Pipeline.Projections.Lake;
using Pipeline.Registry;
using Pipeline.Simulator.Models;
using V = Pipeline.Core.Signals.SignalCatalog.Vehicle;

namespace Pipeline.Tests.Integration.Projections;

/// <summary>
/// Issue 16: compaction merges files already in file order a batch at a time instead of sorting the whole partition in
/// memory, and DuckDB writes the merged batches (its pages read faster than Arrow's writer's). Read back, the merged file
/// has exactly the rows, the order, the columns' names and types and the row groups' statistics of the whole partition
/// sorted and written by the lake's own writer.
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
        var sha256 = await FileMerge.WriteAsync(merged, Schema, inputs);
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
        // Arrow's writer gives a float column's zero minimum as -0.0 (as Parquet asks), DuckDB as 0.0: the same for skipping.
        const string statistics = "SELECT row_group_id, row_group_num_rows, path_in_schema, replace(stats_min_value, '-0.0', '0.0'), stats_max_value, stats_null_count FROM parquet_metadata";
        var differ = Strings(duckdb, $"SELECT d::VARCHAR FROM (({statistics}('{merged}') EXCEPT ALL {statistics}('{sorted}')) UNION ALL ({statistics}('{sorted}') EXCEPT ALL {statistics}('{merged}'))) d");
        Assert.True(differ.Count == 0, string.Join("\n", differ));
        // Columns' names, order and types as read (DuckDB writes every column OPTIONAL); timestamps UTC-adjusted micros;
        // one data page per column chunk.
        const string columns = "SELECT column_name || ' ' || column_type FROM (DESCRIBE SELECT * FROM read_parquet";
        Assert.Equal(Strings(duckdb, $"{columns}('{sorted}'))"), Strings(duckdb, $"{columns}('{merged}'))"));
        Assert.Equal(Schema.FieldsList.Select(f => f.Name), Strings(duckdb, $"SELECT column_name FROM (DESCRIBE SELECT * FROM read_parquet('{merged}'))"));
        Assert.Equal(2, Scalar(duckdb, $"SELECT count(*) FROM parquet_schema('{merged}') WHERE type = 'INT64' AND logical_type LIKE '%isAdjustedToUTC=1%MICROS%'"));
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(merged))), sha256);
    }

    [Fact]
    public async Task AMergeThatFails_LeavesNoFile()
    {
        var inputs = new[] { Write("round-1.parquet", FileOrder.Sort(Schema, [Rows(1, 1_000)])), Write("garbage.parquet", FileOrder.Sort(Schema, [Rows(1_001, 1_000)])) };
        File.WriteAllBytes(inputs[1], "not a parquet file"u8.ToArray());
        var merged = Path.Combine(_folder, "out", "merged.parquet");
        await Assert.ThrowsAnyAsync<Exception>(() => FileMerge.WriteAsync(merged, Schema, inputs));
        Assert.False(File.Exists(merged));
        Assert.False(Directory.Exists(merged + ".spill"));
    }

    [Fact]
    public async Task WideFleetRows_OfEarlierCompactionsAndRounds_MergeInFileOrderWithinDuckDBsMemory_Issue16()
    {
        // A day as compaction meets it at a live rate (bench e2e): files of earlier compactions near CompactBelowRows,
        // written by DuckDB (a page per column chunk), and rounds' files since, rows of the simulator's fleet (wide rows).
        var fleet = FleetReadings(cars: 500).GetEnumerator();
        var inputs = new List<string>();
        for (var compacted = 0; compacted < 2; compacted++)
        {
            var rounds = Enumerable.Range(0, 3).Select(round => Write($"compacted-{compacted}-{round}.parquet", FileOrder.InOrder(Schema, FleetRows(fleet, 50_000)))).ToList();
            inputs.Add(Path.Combine(_folder, $"compacted-{compacted}.parquet"));
            await FileMerge.WriteAsync(inputs[^1], Schema, rounds);
        }
        for (var round = 0; round < 14; round++) inputs.Add(Write($"round-{round}.parquet", FileOrder.InOrder(Schema, FleetRows(fleet, 1_000))));
        const long rows = 2 * 150_000 + 14 * 1_000;

        using var duckdb = new DuckDBConnection("DataSource=:memory:");
        duckdb.Open();
        var merged = Path.Combine(_folder, "out", "merged.parquet");
        await FileMerge.WriteAsync(merged, Schema, inputs);
        Assert.Equal(rows, Scalar(duckdb, $"SELECT count(DISTINCT event_seq) FROM read_parquet('{merged}')"));
        Assert.Equal(0, Scalar(duckdb, $"SELECT count(*) FROM (SELECT file_row_number, row_number() OVER (ORDER BY device, device_time, event_seq) - 1 AS place FROM read_parquet('{merged}', file_row_number = true)) WHERE file_row_number <> place"));
        Assert.Equal(rows / ParquetFiles.RowGroupRows + 1, Scalar(duckdb, $"SELECT count(*) FROM parquet_metadata('{merged}') WHERE column_id = 0"));
    }

    /// <summary>Readings of the simulator's cars (its vehicle model, every signal it sends), a second apart, in event order.</summary>
    private static IEnumerable<FeedEvent> FleetReadings(int cars)
    {
        var models = Enumerable.Range(0, cars).Select(i => new VehicleModel(i * 7919, Region.All[i % Region.All.Count], electric: i % 5 == 0)).ToList();
        var sequence = 0L;
        for (var tick = 0; ; tick++)
        {
            for (var car = 0; car < cars; car++)
            {
                models[car].Advance(1);
                if (!models[car].Driving) continue;
                sequence++;
                var time = Morning.AddSeconds(tick);
                yield return new FeedEvent(sequence, CarAddress(car), new ReadingAccepted($"0x{sequence:x64}", sequence, time, time.AddMilliseconds(300), models[car].Signals(), car % 8, sequence));
            }
        }
    }

    private static string CarAddress(int car) => $"0x{car * 7919 + 1:x40}";

    private static RecordBatch FleetRows(IEnumerator<FeedEvent> readings, int count)
    {
        var events = new List<FeedEvent>(count);
        while (events.Count < count && readings.MoveNext()) events.Add(readings.Current);
        var devices = events.Select(e => e.Device).Distinct().ToDictionary(d => d, d => new Device { Id = d, Kind = DeviceKind.Vehicle });
        return new LakeBuilder(locationDecimals: 2).Build(events, devices).Single().Rows.ToRecordBatch();
    }

    private static string Difference(string left, string right) =>
        $"SELECT count(*) FROM (({left} EXCEPT ALL {right}) UNION ALL ({right} EXCEPT ALL {left}))";

    private static List<string> Strings(DuckDBConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var values = new List<string>();
        while (reader.Read()) values.Add(reader.GetString(0));
        return values;
    }

    private static long Scalar(DuckDBConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(command.ExecuteScalar());
    }
}
