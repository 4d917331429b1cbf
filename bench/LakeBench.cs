using System.Diagnostics;
using System.Text;
using DuckDB.NET.Data;
using JasperFx.Events;
using Marten;
using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Core.Events;
using Pipeline.Projections.Lake;
using Pipeline.Registry;
using Spectre.Console;
using V = Pipeline.Core.Signals.SignalCatalog.Vehicle;

namespace Pipeline.Bench;

/// <summary>
/// Events into the lake (read from PostgreSQL, rows into Arrow, Parquet written, committed) in rows/s, and a typical
/// aggregate over the lake's views against the same query on one Parquet file DuckDB wrote itself from the same rows.
/// </summary>
public static class LakeBench
{
    private const int Devices = 200;

    public static async Task RunAsync(TimeSpan duration, CancellationToken stop)
    {
        var readings = (int)Math.Clamp(duration.TotalSeconds * 100_000, 200_000, 2_000_000);
        var loadBefore = LoadAverage();
        await using var scratch = await Scratch.StartAsync();
        var (lakeDirectory, files, lakeOptions, projection) = await BuildLakeAsync(scratch, readings, stop);

        using var lake = LakeCatalog.Open(lakeDirectory, files, lakeOptions.EpochLength);
        const string aggregate = "SELECT device, date, count(*) AS readings, avg(speed_kmh) AS speed_mean, max(speed_kmh) AS speed_max, max(odometer_km) - min(odometer_km) AS distance_km FROM {0} GROUP BY device, date";
        string On(string source) => string.Format(System.Globalization.CultureInfo.InvariantCulture, aggregate, source);
        // DuckDB's own file, as DuckDB writes it by default (snappy, its row groups), from the same rows.
        var single = Path.Combine(scratch.Folder, "duckdb-wrote-this.parquet");
        LakeCatalog.Execute(lake, $"COPY (SELECT * FROM vehicle_signals) TO '{single}' (FORMAT parquet)");
        var rowGroups = Scalar(lake, $"SELECT count(DISTINCT (file_name, row_group_id)) FROM parquet_metadata([{string.Join(", ", files.Where(f => f.Dataset == LakeDatasets.VehicleSignals).Select(f => $"'{Path.Combine(lakeDirectory, f.Path)}'"))}])");

        var variants = await VariantsAsync(lake, lakeDirectory, files, scratch.Folder, single, On, stop);
        var (onSingle, onLake) = (variants[0], variants[1]);

        var stages = await StagesAsync(scratch, lakeOptions, readings, stop);

        var table = new Table().AddColumn("Measure").AddColumn(new TableColumn("Value").RightAligned());
        table.AddRow("Load average (1, 5, 15 min) before / after", $"{loadBefore} / {LoadAverage()}");
        table.AddRow($"Projection: {readings:N0} events → Arrow → Parquet, rounds of {lakeOptions.MaxEventsPerRound:N0}", $"{readings / projection.Elapsed.TotalSeconds:N0} rows/s");
        table.AddRow("CPU per row projected: this process + PostgreSQL", $"{projection.ProcessCpu.TotalMicroseconds / readings:F1} + {projection.PostgresCpu.TotalMicroseconds / readings:F1} µs");
        table.AddRow("Its stages one after another, CPU of this process per row: read and parse events / rows into Arrow / sorted into file order (as stored, nearly sorted; in arrival order) / Parquet written", $"{stages.Read:F1} / {stages.Build:F1} / {stages.Sort:F1}; {stages.SortArrival:F1} / {stages.Write:F1} µs");
        table.AddRow($"Compaction: every partition into one file sorted by device and time ({files.Count} files, {rowGroups} row groups of vehicle_signals)", $"{projection.Compacting.TotalSeconds:F1} s, CPU {projection.CompactingCpu.TotalMicroseconds / readings:F1} µs per row");
        table.AddRow($"Daily aggregate per vehicle over the lake's view (median of {Turns}, in turns)", $"{onLake.Time.TotalMilliseconds:N1} ms");
        table.AddRow($"The same query on one Parquet file DuckDB wrote itself (median of {Turns}, in turns)", $"{onSingle.Time.TotalMilliseconds:N1} ms");
        table.AddRow("Lake query time ÷ DuckDB's own file: wall clock (median) / CPU of this process (sum over the turns)", $"{onLake.Time / onSingle.Time:F2}× / {onLake.Cpu / onSingle.Cpu:F2}×");
        AnsiConsole.Write(table);

        var parts = new Table().Title($"Where the lake's query time goes: the same rows laid out and compressed otherwise, timed in turns (median of {Turns})")
            .AddColumn("Files").AddColumn(new TableColumn("Size").RightAligned()).AddColumn(new TableColumn("Query").RightAligned())
            .AddColumn(new TableColumn("÷ DuckDB's own file").RightAligned()).AddColumn(new TableColumn("CPU ÷ DuckDB's own file").RightAligned());
        foreach (var (name, bytes, time, cpu) in variants) parts.AddRow(name, Mb(bytes), $"{time.TotalMilliseconds:N1} ms", $"{time / onSingle.Time:F2}×", $"{cpu / onSingle.Cpu:F2}×");
        AnsiConsole.Write(parts);
    }

    /// <summary>
    /// The aggregate over the same rows in other files, to tell the view's list of day files from the files' encoding and
    /// codec: DuckDB's own files split by day as the lake is (snappy and zstd), and the lake's live files written again
    /// by the lake's writer, same order and row groups, with each other codec. DuckDB's single file comes first, the
    /// lake's view second. Timed in turns, each turn in a new order (shuffled: rotated, the view always came right after
    /// DuckDB's file), on one connection (the same threads), each warmed once first: a load that changes during the
    /// bench, and whatever a query leaves behind for the next, weigh on every one alike. Beside the median wall clock,
    /// this process's CPU summed over the turns: other processes' load stretches the wall clock of a query more than
    /// the CPU it takes.
    /// </summary>
    private static async Task<List<(string Name, long Bytes, TimeSpan Time, TimeSpan Cpu)>> VariantsAsync(DuckDBConnection lake, string lakeDirectory, IReadOnlyList<LakeFile> files, string folder, string single, Func<string, string> query, CancellationToken stop)
    {
        var sources = new List<(string Name, long Bytes, string Source)>();
        void Add(string name, IReadOnlyList<string> paths) => sources.Add((name, paths.Sum(p => new FileInfo(p).Length),
            $"read_parquet([{string.Join(", ", paths.Select(p => $"'{p}'"))}], hive_partitioning = true, hive_types = {{'date': DATE}})"));
        sources.Add(("DuckDB's own single file (snappy)", new FileInfo(single).Length, $"read_parquet('{single}')"));
        var vehicleFiles = files.Where(f => f.Dataset == LakeDatasets.VehicleSignals).ToList();
        sources.Add(("The lake's view (zstd, as kept)", vehicleFiles.Sum(f => new FileInfo(Path.Combine(lakeDirectory, f.Path)).Length), "vehicle_signals"));
        Add("The lake's files read directly (zstd)", vehicleFiles.Select(f => Path.Combine(lakeDirectory, f.Path)).ToList());
        foreach (var codec in new[] { "snappy", "zstd" })
        {
            var directory = Path.Combine(folder, $"duckdb-by-day-{codec}");
            LakeCatalog.Execute(lake, $"COPY (SELECT * FROM vehicle_signals) TO '{directory}' (FORMAT parquet, PARTITION_BY (date), COMPRESSION {codec})");
            Add($"DuckDB's own files, one per day ({codec})", Directory.EnumerateFiles(directory, "*.parquet", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList());
        }
        foreach (var codec in new[] { ParquetSharp.Compression.Lz4, ParquetSharp.Compression.Snappy, ParquetSharp.Compression.Uncompressed })
        {
            var paths = new List<string>();
            foreach (var file in vehicleFiles)
            {
                var path = Path.Combine(folder, $"lake-{codec}", file.Path);
                // Compacted files are DuckDB's, whose columns are all nullable: the rows are given the lake's schema again.
                var batches = await ParquetFiles.ReadAsync(Path.Combine(lakeDirectory, file.Path));
                ParquetFiles.Write(path, LakeDatasets.Vehicle.Schema, batches.Select(b => new Apache.Arrow.RecordBatch(LakeDatasets.Vehicle.Schema, b.Arrays, b.Length)), codec);
                paths.Add(path);
            }
            Add($"The lake's files written again ({codec})", paths);
        }
        foreach (var (_, _, source) in sources) Once(lake, query(source));
        var times = sources.Select(_ => new List<TimeSpan>()).ToList();
        var cpu = new TimeSpan[sources.Count];
        var random = new Random(16);
        for (var turn = 0; turn < Turns; turn++)
        {
            stop.ThrowIfCancellationRequested();
            foreach (var i in Enumerable.Range(0, sources.Count).OrderBy(_ => random.Next()).ToList())
            {
                var (wall, used) = Once(lake, query(sources[i].Source));
                times[i].Add(wall);
                cpu[i] += used;
            }
        }
        return sources.Select((s, i) => (s.Name, s.Bytes, times[i].Order().ElementAt(Turns / 2), cpu[i])).ToList();
    }

    private static string Mb(long bytes) => $"{bytes / 1_048_576.0:N1} MB";

    /// <summary>What making the bench's lake cost: wall clock and CPU of the projection, and the compaction after it.</summary>
    public sealed record Projection(TimeSpan Elapsed, TimeSpan ProcessCpu, TimeSpan PostgresCpu, TimeSpan Compacting, TimeSpan CompactingCpu);

    /// <summary>A lake made as the projector makes it: reading events in PostgreSQL, projected in rounds, compacted.</summary>
    public static async Task<(string Directory, IReadOnlyList<LakeFile> Files, LakeOptions Options, Projection Projection)> BuildLakeAsync(Scratch stack, int readings, CancellationToken stop)
    {
        var data = stack.Folder;
        await AnsiConsole.Status().StartAsync($"Storing {readings:N0} reading events (bulk insert)…", _ => StoreEventsAsync(stack, readings));

        // Rounds of 100,000 events (under CompactBelowRows, as LakeOptions requires); every partition compacted at the end.
        var lakeOptions = new LakeOptions { Directory = Path.Combine(data, "lake"), MaxEventsPerRound = 100_000, CompactAtFiles = 2 };
        var lakeDirectory = lakeOptions.ResolveDirectory(data);
        var lakeStore = stack.Services.GetRequiredService<LakeStore>();
        var manifest = lakeStore.Manifest(LakeProjector.LiveLake);
        await manifest.EnsureSchemaAsync(stop);
        var writer = new LakeWriter(lakeStore, manifest, lakeDirectory, lakeOptions, null, NullLogger.Instance);
        var (clock, processCpu, postgresCpu) = (Stopwatch.StartNew(), Process.GetCurrentProcess().TotalProcessorTime, StreamsBench.PostgresCpu(stack));
        await AnsiConsole.Progress().StartAsync(async progress =>
        {
            var task = progress.AddTask("Projecting into the lake", maxValue: readings);
            await writer.CatchUpAsync(until: null, new Increments(task), stop);
        });
        var (projecting, projectingCpu, postgresProjectingCpu) = (clock.Elapsed, Process.GetCurrentProcess().TotalProcessorTime - processCpu, StreamsBench.PostgresCpu(stack) - postgresCpu);
        var (compacting, compactingCpu) = (Stopwatch.StartNew(), Process.GetCurrentProcess().TotalProcessorTime);
        await writer.CompactAsync(force: true, stop);
        compactingCpu = Process.GetCurrentProcess().TotalProcessorTime - compactingCpu;
        var files = await manifest.FilesAsync(stop);
        return (lakeDirectory, files, lakeOptions, new Projection(projecting, projectingCpu, postgresProjectingCpu, compacting.Elapsed, compactingCpu));
    }

    /// <summary>
    /// The projection's stages run alone, one after the other over the same events, each timed by this process's CPU:
    /// the feed (PostgreSQL's rows and their JSON), rows into Arrow, Parquet written and synced.
    /// </summary>
    private static async Task<(double Read, double Build, double Sort, double SortArrival, double Write)> StagesAsync(Scratch stack, LakeOptions options, int readings, CancellationToken stop)
    {
        var lakeStore = stack.Services.GetRequiredService<LakeStore>();
        var feed = lakeStore.Feed();
        var folder = Path.Combine(stack.Folder, "stages");
        var (read, build, sort, sortArrival, write) = (TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero);
        var devices = new Dictionary<string, Device>(StringComparer.Ordinal);
        await using (var session = stack.Store.QuerySession())
            foreach (var device in await session.Query<Device>().ToListAsync()) devices[device.Id] = device;
        var builder = new LakeBuilder(options.LocationDecimals);
        long after = 0;
        while (true)
        {
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var (events, through) = await feed.ReadAsync(after, options.MaxEventsPerRound, null, stop);
            read += Process.GetCurrentProcess().TotalProcessorTime - cpu;
            if (through == after) break;
            after = through;
            cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var groups = builder.Build(events, devices).Select(g => (g.Dataset, Batch: g.Rows.ToRecordBatch())).ToList();
            build += Process.GetCurrentProcess().TotalProcessorTime - cpu;
            cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var sorted = groups.Select(g => (g.Dataset, Batch: FileOrder.InOrder(g.Dataset.Schema, g.Batch))).ToList();
            sort += Process.GetCurrentProcess().TotalProcessorTime - cpu;
            // The bench stores the events device after device, so its rounds come nearly in file order; a live round
            // comes in arrival order (every device's readings interleaved by time): the same rows sorted from that.
            var arriving = builder.Build(events.OrderBy(e => e.Data is ReadingAccepted r ? r.ReceivedAt : default).ThenBy(e => e.Sequence), devices).Select(g => (g.Dataset, Batch: g.Rows.ToRecordBatch())).ToList();
            cpu = Process.GetCurrentProcess().TotalProcessorTime;
            foreach (var (dataset, batch) in arriving) FileOrder.InOrder(dataset.Schema, batch).Dispose();
            sortArrival += Process.GetCurrentProcess().TotalProcessorTime - cpu;
            cpu = Process.GetCurrentProcess().TotalProcessorTime;
            foreach (var (dataset, batch) in sorted) ParquetFiles.Write(Path.Combine(folder, $"{dataset.Name}-{after}.parquet"), dataset.Schema, [batch]);
            write += Process.GetCurrentProcess().TotalProcessorTime - cpu;
        }
        Directory.Delete(folder, recursive: true);
        return (read.TotalMicroseconds / readings, build.TotalMicroseconds / readings, sort.TotalMicroseconds / readings, sortArrival.TotalMicroseconds / readings, write.TotalMicroseconds / readings);
    }

    /// <summary>Device streams written with Marten's bulk insert: a registration and then the readings of each car.</summary>
    private static async Task StoreEventsAsync(Scratch stack, int readings)
    {
        var start = DateTimeOffset.UtcNow.AddDays(-2);
        var perDevice = readings / Devices;
        var owner = EthKey.FromSeed("lake-bench-owner"u8).Address.ToLowerHex();
        var devices = new List<Device>();
        var streams = new List<StreamAction>();
        for (var d = 0; d < Devices; d++)
        {
            var address = EthKey.FromSeed(Encoding.UTF8.GetBytes($"lake-bench-{d}")).Address.ToLowerHex();
            devices.Add(new Device { Id = address, Owner = owner, Kind = DeviceKind.Vehicle, RegisteredAt = start, UpdatedAt = start });
            var events = new List<object> { new DeviceRegistered(address, owner, DeviceKind.Vehicle, new Dictionary<string, string>(), "{}", "0x", "0x", start) };
            for (var i = 0; i < perDevice; i++)
            {
                var time = start.AddSeconds(i * 5 + d);
                events.Add(new ReadingAccepted($"0x{d:x4}{i:x8}", i + 1, time, time.AddSeconds(1), new Dictionary<string, double>
                {
                    [V.Speed] = 30 + (i % 90), [V.Latitude] = 52.3 + i * 1e-5, [V.Longitude] = 4.9 + d * 1e-3, [V.Odometer] = 10_000 + i * 0.07,
                    [V.EngineSpeed] = 1500 + (i % 1500), [V.CoolantTemperature] = 88, [V.FuelLevel] = 80 - i * 1e-3,
                }, 0, i));
            }
            streams.Add(StreamAction.Start(((DocumentStore)stack.Store).Events, address, [.. events]));
        }
        await stack.Store.BulkInsertDocumentsAsync(devices);
        await stack.Store.BulkInsertEventsAsync(streams, batchSize: 20_000);
        // As in a store written over time, not by the bench a moment ago: the freshly inserted rows vacuumed and their
        // hint bits set, so PostgreSQL's CPU while projecting is the lake's reads, not the bulk insert's aftermath.
        await using var connection = await stack.Services.GetRequiredService<Npgsql.NpgsqlDataSource>().OpenConnectionAsync();
        foreach (var statement in new[] { $"VACUUM (ANALYZE) {stack.Services.GetRequiredService<LakeStore>().Schema}.mt_events", "CHECKPOINT" })
        {
            await using var command = new Npgsql.NpgsqlCommand(statement, connection);
            await command.ExecuteNonQueryAsync();
        }
    }

    /// <summary>Advances the bar as each round reports (Progress&lt;T&gt; would post, and could land after the bar is gone).</summary>
    private sealed class Increments(ProgressTask task) : IProgress<int>
    {
        public void Report(int value) => task.Increment(value);
    }

    /// <summary>Turns of the aggregate over every layout (an odd number, so the median is one of them).</summary>
    private const int Turns = 51;

    /// <summary>One run of <paramref name="sql"/>, read to the end: its wall clock and this process's CPU.</summary>
    private static (TimeSpan Wall, TimeSpan Cpu) Once(DuckDBConnection connection, string sql)
    {
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        using (var command = connection.CreateCommand())
        {
            command.CommandText = sql;
            using var reader = command.ExecuteReader();
            while (reader.Read()) { }
        }
        return (clock.Elapsed, Process.GetCurrentProcess().TotalProcessorTime - cpu);
    }

    private static long Scalar(DuckDBConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static string LoadAverage() => string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
}
