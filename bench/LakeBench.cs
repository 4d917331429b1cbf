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

    public static async Task RunAsync(TimeSpan duration)
    {
        var readings = (int)Math.Clamp(duration.TotalSeconds * 100_000, 200_000, 2_000_000);
        await using var scratch = await Scratch.StartAsync();
        var (lakeDirectory, files, lakeOptions, projecting) = await BuildLakeAsync(scratch, readings);

        using var lake = LakeCatalog.Open(lakeDirectory, files, lakeOptions.EpochLength);
        const string aggregate = "SELECT device, date, count(*) AS readings, avg(speed_kmh) AS speed_mean, max(speed_kmh) AS speed_max, max(odometer_km) - min(odometer_km) AS distance_km FROM {0} GROUP BY device, date";
        var onLake = Time(lake, string.Format(System.Globalization.CultureInfo.InvariantCulture, aggregate, "vehicle_signals"));
        var single = Path.Combine(scratch.Folder, "duckdb-wrote-this.parquet");
        LakeCatalog.Execute(lake, $"COPY (SELECT * FROM vehicle_signals) TO '{single}' (FORMAT parquet)");
        var onSingle = Time(lake, string.Format(System.Globalization.CultureInfo.InvariantCulture, aggregate, $"read_parquet('{single}')"));

        var table = new Table().AddColumn("Measure").AddColumn(new TableColumn("Value").RightAligned());
        table.AddRow($"Projection: {readings:N0} events → Arrow → Parquet ({files.Count} files after compaction)", $"{readings / projecting.TotalSeconds:N0} rows/s");
        table.AddRow("Daily aggregate per vehicle over the lake's view (median of 5)", $"{onLake.TotalMilliseconds:N0} ms");
        table.AddRow("The same query on one Parquet file DuckDB wrote itself", $"{onSingle.TotalMilliseconds:N0} ms");
        table.AddRow("Lake query time ÷ DuckDB's own file", $"{onLake / onSingle:F2}×");
        AnsiConsole.Write(table);
    }

    /// <summary>A lake made as the projector makes it: reading events in PostgreSQL, projected in rounds, compacted.</summary>
    public static async Task<(string Directory, IReadOnlyList<LakeFile> Files, LakeOptions Options, TimeSpan Projecting)> BuildLakeAsync(Scratch stack, int readings)
    {
        var data = stack.Folder;
        await AnsiConsole.Status().StartAsync($"Storing {readings:N0} reading events (bulk insert)…", _ => StoreEventsAsync(stack, readings));

        // Rounds of 100,000 events (under CompactBelowRows, as LakeOptions requires); every partition compacted at the end.
        var lakeOptions = new LakeOptions { Directory = Path.Combine(data, "lake"), MaxEventsPerRound = 100_000, CompactAtFiles = 2 };
        var lakeDirectory = lakeOptions.ResolveDirectory(data);
        var lakeStore = stack.Services.GetRequiredService<LakeStore>();
        var manifest = lakeStore.Manifest(LakeProjector.LiveLake);
        await manifest.EnsureSchemaAsync(CancellationToken.None);
        var writer = new LakeWriter(lakeStore, manifest, lakeDirectory, lakeOptions, null, NullLogger.Instance);
        var clock = Stopwatch.StartNew();
        await AnsiConsole.Progress().StartAsync(async progress =>
        {
            var task = progress.AddTask("Projecting into the lake", maxValue: readings);
            await writer.CatchUpAsync(until: null, new Increments(task), CancellationToken.None);
        });
        var projecting = clock.Elapsed;
        await writer.CompactAsync(force: true, CancellationToken.None);
        var files = await manifest.FilesAsync(CancellationToken.None);
        return (lakeDirectory, files, lakeOptions, projecting);
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
    }

    /// <summary>Advances the bar as each round reports (Progress&lt;T&gt; would post, and could land after the bar is gone).</summary>
    private sealed class Increments(ProgressTask task) : IProgress<int>
    {
        public void Report(int value) => task.Increment(value);
    }

    private static TimeSpan Time(DuckDBConnection connection, string sql)
    {
        var times = new List<TimeSpan>();
        for (var i = 0; i < 5; i++)
        {
            var clock = Stopwatch.StartNew();
            using var command = connection.CreateCommand();
            command.CommandText = sql;
            using var reader = command.ExecuteReader();
            while (reader.Read()) { }
            times.Add(clock.Elapsed);
        }
        return times.Order().ElementAt(2);
    }
}
