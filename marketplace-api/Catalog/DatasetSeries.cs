using System.Collections.Concurrent;
using System.Globalization;
using System.Text.RegularExpressions;
using DuckDB.NET.Data;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Pipeline.Marketplace.Catalog;

/// <summary>One bucket of a dataset's rows in device time: how many, and the chosen signal's mean, min and max in it.</summary>
public sealed record SeriesPoint(DateTimeOffset At, long Rows, double? Mean, double? Min, double? Max);

/// <summary>Rows over time (and a signal's values when one is named) of a dataset, one device's or one 1° cell's or all.</summary>
public sealed record DatasetSeriesView(string Dataset, string? Signal, string? Device, RegionCell? Cell, int BucketSeconds, long LakeCheckpoint, IReadOnlyList<SeriesPoint> Points);

/// <summary>
/// Free aggregates a buyer looks at before paying: rows per bucket over a dataset's whole time coverage, and a signal's
/// mean/min/max per bucket, for a device or a 1° cell. Buckets are the smallest of a minute, an hour, a day or a week
/// that keeps the series under <see cref="MaxBuckets"/> points. Like the catalog, each answer is the last one computed
/// while one recompute runs behind it (at most once per <c>Marketplace:CatalogRefresh</c>), so a page that shows it
/// does not wait for a scan of the lake.
/// </summary>
public sealed partial class DatasetSeries(MarketLake lake, TimeProvider clock, IOptions<MarketplaceOptions> options, ILogger<DatasetSeries> logger)
{
    public const int MaxBuckets = 1500;
    private const int MaxCached = 256;   // the keys are strangers' choices (devices, cells): bounded, then started afresh
    private static readonly int[] BucketSeconds = [60, 3_600, 86_400, 7 * 86_400];
    private readonly ConcurrentDictionary<SeriesKey, StaleWhileRevalidate<DatasetSeriesView>> _cache = new();

    private sealed record SeriesKey(string Dataset, string? Signal, string? Device, double? South, double? West);

    /// <summary>The series, or a refusal naming what is wrong with the request (unknown signal, malformed device or place).</summary>
    public Task<DatasetSeriesView> GetAsync(MarketDataset dataset, string? signal, string? device, string? near, CancellationToken cancellation)
    {
        if (signal is { Length: > 0 } && !dataset.Lake.Signals.Any(s => s.Column == signal))
            throw Invalid($"signal must be one of {dataset.Name}'s signal columns: {string.Join(", ", dataset.Lake.Signals.Select(s => s.Column))}.");
        if (device is { Length: > 0 } && !DeviceAddress().IsMatch(device))
            throw Invalid("device must be a device address: 0x and 40 lower-case hex digits.");
        (double South, double West)? cell = null;
        if (near is { Length: > 0 })
        {
            if (near.Split(',') is not [var a, var b]
                || !double.TryParse(a, NumberStyles.Float, CultureInfo.InvariantCulture, out var lat) || lat is not (>= -90 and <= 90)   // NaN too
                || !double.TryParse(b, NumberStyles.Float, CultureInfo.InvariantCulture, out var lon) || lon is not (>= -180 and <= 180))
                throw Invalid("near must be a place as latitude,longitude in degrees, e.g. 53.3,-6.3; the series covers its 1° cell.");
            cell = (Math.Floor(lat), Math.Floor(lon));
        }
        var key = new SeriesKey(dataset.Name, NullIfEmpty(signal), NullIfEmpty(device), cell?.South, cell?.West);
        if (_cache.Count >= MaxCached && !_cache.ContainsKey(key)) _cache.Clear();
        var cached = _cache.GetOrAdd(key, k => new StaleWhileRevalidate<DatasetSeriesView>(
            previous => RecomputeAsync(dataset, k, previous), options.Value.CatalogRefresh, clock, logger));
        return cached.GetAsync(cancellation);
    }

    private async Task<DatasetSeriesView> RecomputeAsync(MarketDataset dataset, SeriesKey key, DatasetSeriesView? previous)
    {
        var snapshot = await lake.SnapshotAsync(CancellationToken.None);
        return previous?.LakeCheckpoint == snapshot.Checkpoint ? previous : await Task.Run(() => Compute(dataset, key, snapshot));
    }

    private DatasetSeriesView Compute(MarketDataset dataset, SeriesKey key, LakeSnapshot snapshot)
    {
        using var duck = Projections.Lake.LakeCatalog.Open(snapshot.Directory, snapshot.Files, lake.EpochLength);
        var shape = dataset.Shape;
        var filters = new List<string>();
        if (key.Device is not null) filters.Add($"{shape.DeviceColumn} = $device");
        if (key.South is not null)
            filters.Add($"{shape.LatitudeColumn} >= $south AND {shape.LatitudeColumn} < $south + 1 AND {shape.LongitudeColumn} >= $west AND {shape.LongitudeColumn} < $west + 1");
        var where = filters.Count == 0 ? "" : "WHERE " + string.Join(" AND ", filters);

        DateTimeOffset? from = null, until = null;
        Read(duck, $"SELECT min(device_time), max(device_time) FROM {dataset.Name} {where}", key, r =>
        {
            if (!r.IsDBNull(0)) (from, until) = (Utc(r.GetDateTime(0)), Utc(r.GetDateTime(1)));
        });
        var span = until - from ?? TimeSpan.Zero;
        var bucket = BucketSeconds.FirstOrDefault(s => span.TotalSeconds / s < MaxBuckets, 30 * 86_400);
        var points = new List<SeriesPoint>();
        if (from is not null)
        {
            var value = key.Signal ?? "NULL";
            Read(duck, $"""
                SELECT time_bucket(INTERVAL {bucket} second, device_time) AS bucket_start, count(*), avg({value}), min({value}), max({value})
                FROM {dataset.Name} {where} GROUP BY bucket_start ORDER BY bucket_start
                """, key, r => points.Add(new SeriesPoint(Utc(r.GetDateTime(0)), r.GetInt64(1),
                    r.IsDBNull(2) ? null : r.GetDouble(2), r.IsDBNull(3) ? null : r.GetDouble(3), r.IsDBNull(4) ? null : r.GetDouble(4))));
        }
        var cell = key.South is { } south ? new RegionCell(south, key.West!.Value, points.Sum(p => p.Rows)) : null;
        return new DatasetSeriesView(dataset.Name, key.Signal, key.Device, cell, bucket, snapshot.Checkpoint, points);
    }

    private static void Read(DuckDBConnection duck, string sql, SeriesKey key, Action<DuckDBDataReader> row)
    {
        using var command = duck.CreateCommand();
        command.CommandText = sql;
        if (key.Device is not null) command.Parameters.Add(new DuckDBParameter("device", key.Device));
        if (key.South is not null)
        {
            command.Parameters.Add(new DuckDBParameter("south", key.South.Value));
            command.Parameters.Add(new DuckDBParameter("west", key.West!.Value));
        }
        using var reader = command.ExecuteReader();
        while (reader.Read()) row(reader);
    }

    private static DateTimeOffset Utc(DateTime at) => new(DateTime.SpecifyKind(at, DateTimeKind.Utc));

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

    private static MarketRefusedException Invalid(string detail) => new(StatusCodes.Status400BadRequest, MarketReason.InvalidRequest, detail);

    [GeneratedRegex("^0x[0-9a-f]{40}$")]
    private static partial Regex DeviceAddress();
}
