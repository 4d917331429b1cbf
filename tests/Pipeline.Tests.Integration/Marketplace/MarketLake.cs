using DuckDB.NET.Data;
using Pipeline.Marketplace.Sandbox;
using Pipeline.Projections.Lake;

namespace Pipeline.Tests.Integration.Marketplace;

/// <summary>One vehicle reading as the lake stores it (a subset of the signal columns).</summary>
public sealed record VehicleRow(string Device, string ReadingId, long Seq, DateTimeOffset DeviceTime, DateTimeOffset ReceivedAt, long EventSeq, double? SpeedKmh, double Latitude, double Longitude)
{
    public DateOnly Date => DateOnly.FromDateTime(DeviceTime.UtcDateTime);
}

/// <summary>
/// A lake-shaped folder in a temp directory: <c>vehicle_signals/date=…/part-first-last.parquet</c> over three days
/// and three devices, written by a DuckDB of the test's own, plus a file outside any grant. The rows are kept so tests
/// compute what a grant must return without asking the code under test.
/// </summary>
public sealed class MarketLake : IDisposable
{
    public static readonly string[] Devices = ["0x00000000000000000000000000000000000000a1", "0x00000000000000000000000000000000000000b2", "0x00000000000000000000000000000000000000c3"];
    public static readonly DateOnly[] Days = [new(2026, 11, 23), new(2026, 11, 24), new(2026, 11, 25)];
    public const int RowsPerDevicePerDay = 200;

    public MarketLake()
    {
        Root = Path.Combine(Path.GetTempPath(), "market-lake-" + Guid.NewGuid().ToString("n"));
        long eventSeq = 0;
        foreach (var day in Days)
            for (var i = 0; i < RowsPerDevicePerDay; i++)
                foreach (var device in Devices)
                {
                    eventSeq++;
                    var time = new DateTimeOffset(day.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero).AddSeconds(i * 300 + device[^1]);
                    Rows.Add(new VehicleRow(device, $"0x{eventSeq:x64}", i + 1 + day.DayNumber * 1000L, time, time.AddSeconds(2), eventSeq,
                        i % 10 == 0 ? null : i % 130, Math.Round(52 + i * 0.01, 2), Math.Round(-7 + (device[^1] - '0') * 0.1 + i * 0.005, 3)));
                }
        foreach (var day in Days)
        {
            var first = Rows.Where(r => r.Date == day).Min(r => r.EventSeq);
            var last = Rows.Where(r => r.Date == day).Max(r => r.EventSeq);
            var path = Path.Combine(Root, "vehicle_signals", $"date={day:yyyy-MM-dd}", $"part-{first}-{last}.parquet");
            Write(Rows.Where(r => r.Date == day), path);
            Files.Add(path);
        }
        using var duck = new DuckDBConnection("DataSource=:memory:");
        duck.Open();
        // Not part of any grant: a query must never see it, even though it lies beside the granted files.
        Secret = Path.Combine(Root, "secrets", "date=2026-11-23", "part-1-1.parquet");
        Directory.CreateDirectory(Path.GetDirectoryName(Secret)!);
        Execute(duck, $"COPY (SELECT 'do not read' AS secret) TO '{Secret}' (FORMAT parquet)");
    }

    public string Root { get; }
    public List<VehicleRow> Rows { get; } = [];
    public List<string> Files { get; } = [];
    public string Secret { get; }

    /// <summary>A grant on the first two days' files (the third day's file is outside it).</summary>
    public GrantedTable Grant(string name = "vehicle_signals", RowRestriction? rows = null) =>
        new(name, TableShape.VehicleSignals, Files.Take(2).ToList(), rows ?? new RowRestriction(new DateTimeOffset(2026, 11, 23, 0, 0, 0, TimeSpan.Zero), null));

    /// <summary>The rows a restriction selects from the granted days, computed here from the generated rows.</summary>
    public List<VehicleRow> Expected(RowRestriction rows) => Rows
        .Where(r => r.Date <= Days[1])
        .Where(r => r.DeviceTime >= rows.From && (rows.Until is not { } until || r.DeviceTime < until))
        .Where(r => rows.Box is not { } box || r.Latitude >= box.South && r.Latitude <= box.North && r.Longitude >= box.West && r.Longitude <= box.East)
        .Where(r => rows.Devices is null || rows.Devices.Contains(r.Device))
        .ToList();

    public void Dispose() => Directory.Delete(Root, recursive: true);

    /// <summary>Makes the test's files the live lake of <paramref name="host"/>, as the projector would have written them.</summary>
    public async Task PublishAsync(TestHost host)
    {
        WithTheLakesFullSchema(Files);
        // The test's files become the live lake: recorded in the manifest as the projector records its own (paths relative to the lake).
        var manifest = host.Lake.Manifest(LakeProjector.LiveLake);
        await manifest.EnsureSchemaAsync(CancellationToken.None);
        var files = Files.Select(path =>
        {
            var day = Rows.Where(r => path.Contains($"date={r.Date:yyyy-MM-dd}", StringComparison.Ordinal)).ToList();
            return new LakeFile(Path.GetRelativePath(Root, path), LakeDatasets.VehicleSignals, day[0].Date, day.Min(r => r.EventSeq), day.Max(r => r.EventSeq), day.Count, "test");
        }).ToList();
        Assert.True(await manifest.CommitAsync(0, Rows.Max(r => r.EventSeq), files, [], () => { }, CancellationToken.None));
    }

    /// <summary>
    /// Projects <paramref name="rows"/> new readings of the three devices on the second day, as the projector would: one
    /// more file in the lake and the manifest's checkpoint moved past their event sequence numbers. Returns them in order.
    /// </summary>
    public async Task<List<VehicleRow>> ProjectAsync(TestHost host, int rows)
    {
        var checkpoint = Rows.Max(r => r.EventSeq);
        var day = Days[1];
        var added = Enumerable.Range(1, rows).Select(i =>
        {
            var device = Devices[i % Devices.Length];
            var time = new DateTimeOffset(day.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero).AddMilliseconds(i * 1_000L % 86_400_000);
            return new VehicleRow(device, $"0x{checkpoint + i:x64}", 1_000_000 + checkpoint + i, time, time.AddSeconds(2), checkpoint + i, i % 130, 52.5, -6.5);
        }).ToList();
        var path = Path.Combine(Root, "vehicle_signals", $"date={day:yyyy-MM-dd}", $"part-{checkpoint + 1}-{checkpoint + rows}.parquet");
        Write(added, path);
        WithTheLakesFullSchema([path]);
        Rows.AddRange(added);
        Files.Add(path);
        var file = new LakeFile(Path.GetRelativePath(Root, path), LakeDatasets.VehicleSignals, day, checkpoint + 1, checkpoint + rows, rows, "test");
        Assert.True(await host.Lake.Manifest(LakeProjector.LiveLake).CommitAsync(checkpoint, checkpoint + rows, [file], [], () => { }, CancellationToken.None));
        return added;
    }

    /// <summary>
    /// Merges the second day's files into one, as the lake's compaction does: the merged file added and the inputs
    /// replaced in one manifest commit at the same checkpoint (the inputs stay on disk, kept for snapshots).
    /// </summary>
    public async Task CompactSecondDayAsync(TestHost host)
    {
        var manifest = host.Lake.Manifest(LakeProjector.LiveLake);
        var inputs = (await manifest.FilesAsync(CancellationToken.None)).Where(f => f.Date == Days[1]).ToList();
        Assert.True(inputs.Count >= 2);
        var (first, last) = (inputs.Min(f => f.FirstSequence), inputs.Max(f => f.LastSequence));
        var merged = new LakeFile($"vehicle_signals/date={Days[1]:yyyy-MM-dd}/part-{first}-{last}.parquet", LakeDatasets.VehicleSignals, Days[1], first, last, inputs.Sum(f => f.Rows), "test");
        using (var duck = new DuckDBConnection("DataSource=:memory:"))
        {
            duck.Open();
            var sources = string.Join(", ", inputs.Select(f => $"'{Path.Combine(Root, f.Path)}'"));
            Execute(duck, $"COPY (SELECT * FROM read_parquet([{sources}]) ORDER BY event_seq) TO '{Path.Combine(Root, merged.Path)}' (FORMAT parquet, COMPRESSION zstd)");
        }
        var checkpoint = await manifest.CheckpointAsync(CancellationToken.None);
        Assert.True(await manifest.CommitAsync(checkpoint, checkpoint, [merged], inputs, () => { }, CancellationToken.None));
    }

    /// <summary>The test lake's files carry a few columns; the lake's views (the catalog reads them) need every one, so the rest are added as nulls.</summary>
    private static void WithTheLakesFullSchema(IEnumerable<string> files)
    {
        using var duck = new DuckDB.NET.Data.DuckDBConnection("DataSource=:memory:");
        duck.Open();
        foreach (var file in files)
        {
            using var columns = duck.CreateCommand();
            columns.CommandText = $"SELECT name FROM parquet_schema('{file}')";
            var present = new HashSet<string>();
            using (var reader = columns.ExecuteReader()) while (reader.Read()) present.Add(reader.GetString(0));
            var select = string.Join(", ", LakeDatasets.Vehicle.Schema.FieldsList.Select(f => present.Contains(f.Name) ? f.Name : $"CAST(NULL AS DOUBLE) AS {f.Name}"));
            using var copy = duck.CreateCommand();
            copy.CommandText = $"COPY (SELECT {select} FROM read_parquet('{file}') ORDER BY event_seq) TO '{file}.full' (FORMAT parquet, COMPRESSION zstd)";
            copy.ExecuteNonQuery();
            File.Move(file + ".full", file, overwrite: true);
        }
    }

    /// <summary>event_seq, reading_id and speed_kmh of every row of a Parquet file, read by Parquet.Net (not DuckDB, which wrote it).</summary>
    public static async Task<List<(long Seq, string Id, double? Speed)>> ReadParquetAsync(Stream stream)
    {
        await using var reader = await Parquet.ParquetReader.CreateAsync(stream);
        var fields = reader.Schema.GetDataFields();
        var rows = new List<(long, string, double?)>();
        for (var g = 0; g < reader.RowGroupCount; g++)
        {
            using var group = reader.OpenRowGroupReader(g);
            var count = (int)group.RowCount;
            var seqs = new long?[count];
            var ids = new string[count];
            var speeds = new double?[count];
            await group.ReadAsync<long>(fields.Single(f => f.Name == "event_seq"), seqs, null);
            await group.ReadAsync(fields.Single(f => f.Name == "reading_id"), ids, null);
            await group.ReadAsync<double>(fields.Single(f => f.Name == "speed_kmh"), speeds, null);
            for (var i = 0; i < count; i++) rows.Add((seqs[i]!.Value, ids[i], speeds[i]));
        }
        return rows;
    }

    /// <summary>
    /// A grant on one day's file of 30 million rows of 1,000 devices, written under <paramref name="folder"/> by a DuckDB
    /// of the test's own: a slice whose scan takes seconds, for what must stop one midway.
    /// </summary>
    public static GrantedTable LargeSlice(string folder)
    {
        var file = Path.Combine(folder, "vehicle_signals", "date=2026-11-23", "part-1-30000000.parquet");
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        using var duck = new DuckDBConnection("DataSource=:memory:");
        duck.Open();
        using var copy = duck.CreateCommand();
        copy.CommandText = $"""
            COPY (SELECT printf('0x%040x', i % 1000) AS device, TIMESTAMPTZ '2026-11-23 00:00:00+00' + to_microseconds(i * 2000) AS device_time, i AS event_seq,
                         52.0 AS latitude, -7.0 AS longitude FROM range(30000000) r(i)) TO '{file}' (FORMAT parquet)
            """;
        copy.ExecuteNonQuery();
        return new GrantedTable("vehicle_signals", TableShape.VehicleSignals, [file], new RowRestriction(new DateTimeOffset(2026, 11, 23, 0, 0, 0, TimeSpan.Zero), null));
    }

    /// <summary>Rows as a Parquet file written by a DuckDB of the test's own, in event order.</summary>
    private static void Write(IEnumerable<VehicleRow> rows, string path)
    {
        using var duck = new DuckDBConnection("DataSource=:memory:");
        duck.Open();
        Execute(duck, "SET TimeZone = 'UTC'");
        Execute(duck, "CREATE TABLE v (device VARCHAR, reading_id VARCHAR, seq BIGINT, device_time TIMESTAMPTZ, received_at TIMESTAMPTZ, event_seq BIGINT, speed_kmh DOUBLE, latitude DOUBLE, longitude DOUBLE)");
        using (var appender = duck.CreateAppender("v"))
            foreach (var r in rows)
                appender.CreateRow().AppendValue(r.Device).AppendValue(r.ReadingId).AppendValue(r.Seq).AppendValue(r.DeviceTime).AppendValue(r.ReceivedAt)
                    .AppendValue(r.EventSeq).AppendValue(r.SpeedKmh).AppendValue(r.Latitude).AppendValue(r.Longitude).EndRow();
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        Execute(duck, $"COPY (SELECT * FROM v ORDER BY event_seq) TO '{path}' (FORMAT parquet, COMPRESSION zstd)");
    }

    private static void Execute(DuckDBConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

}
