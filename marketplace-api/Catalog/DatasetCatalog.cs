using DuckDB.NET.Data;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Pipeline.Core.Envelope;
using Pipeline.Projections.Lake;

namespace Pipeline.Marketplace.Catalog;

public sealed record ColumnDescription(string Name, string Type, string? Unit, string Meaning);

public sealed record RegionCell(double South, double West, long Rows);

public sealed record QualityReport(long Accepted, long Rejected, IReadOnlyDictionary<string, long> RejectedByReason, double? Completeness, double? Uptime, double? QualityScore);

/// <summary>What a buyer sees of a dataset before buying: coverage, freshness, quality and price (per 1,000 rows, and per MB of 10⁶ bytes for a grant's byte quota).</summary>
public sealed record DatasetSummary(
    string Name,
    string Description,
    string Kind,
    long Rows,
    DateTimeOffset? From,
    DateTimeOffset? Until,
    long Devices,
    double? FreshnessSeconds,
    long CreditsPerThousandRows,
    long LakeCheckpoint,
    long CreditsPerMegabyte);

public sealed record DatasetDetail(DatasetSummary Summary, IReadOnlyList<ColumnDescription> Schema, IReadOnlyList<RegionCell> Regions, QualityReport Quality);

/// <summary>
/// The catalog's numbers, computed by DuckDB over the lake's files at one checkpoint. A scan takes seconds while a
/// fleet sends and the checkpoint moves every second, so requests are answered from the last computed catalog (which
/// names its checkpoint) while one recompute runs behind them, at most once per <c>Marketplace:CatalogRefresh</c>.
/// </summary>
public sealed class DatasetCatalog
{
    private const int MaxRegions = 100;
    private readonly MarketLake _lake;
    private readonly TimeProvider _clock;
    private readonly StaleWhileRevalidate<CatalogAt> _latest;
    private readonly Dictionary<string, (long Checkpoint, Task<QualityReport> Report)> _qualityAt = [];

    public DatasetCatalog(MarketLake lake, TimeProvider clock, IOptions<MarketplaceOptions> options, ILogger<DatasetCatalog> logger)
    {
        _lake = lake;
        _clock = clock;
        _latest = new StaleWhileRevalidate<CatalogAt>(RecomputeAsync, options.Value.CatalogRefresh, clock, logger);
    }

    /// <summary>Every dataset's numbers, exact for the lake at <paramref name="Checkpoint"/>.</summary>
    private sealed record CatalogAt(long Checkpoint, Dictionary<string, Computed> Datasets);

    private sealed record Computed(long Rows, DateTimeOffset? From, DateTimeOffset? Until, long Devices, DateTimeOffset? NewestReceived, IReadOnlyList<RegionCell> Regions, QualityReport Quality);

    public async Task<IReadOnlyList<DatasetSummary>> ListAsync(MarketplaceOptions options, CancellationToken cancellation)
    {
        var (checkpoint, computed) = await _latest.GetAsync(cancellation);
        return MarketDatasets.All.Select(d => Summary(d, computed[d.Name], checkpoint, options)).ToList();
    }

    public async Task<DatasetDetail?> DescribeAsync(string name, MarketplaceOptions options, CancellationToken cancellation)
    {
        if (MarketDatasets.Find(name) is not { } dataset) return null;
        var (checkpoint, computed) = await _latest.GetAsync(cancellation);
        var numbers = computed[name];
        return new DatasetDetail(Summary(dataset, numbers, checkpoint, options), Schema(dataset), numbers.Regions, numbers.Quality);
    }

    private DatasetSummary Summary(MarketDataset dataset, Computed numbers, long checkpoint, MarketplaceOptions options) => new(
        dataset.Name, dataset.Description, dataset.Kind.ToWire(), numbers.Rows, numbers.From, numbers.Until, numbers.Devices,
        numbers.NewestReceived is { } newest ? Math.Max(0, (_clock.GetUtcNow() - newest).TotalSeconds) : null,
        options.PriceOf(dataset.Name), checkpoint, options.MegabytePriceOf(dataset.Name));

    private static List<ColumnDescription> Schema(MarketDataset dataset)
    {
        var signals = dataset.Lake.Signals.ToDictionary(s => s.Column);
        return dataset.Lake.Schema.FieldsList.Select(f => signals.TryGetValue(f.Name, out var signal)
                ? new ColumnDescription(f.Name, f.DataType.Name, signal.Unit, signal.Description)
                : new ColumnDescription(f.Name, f.DataType.Name, null, FixedColumns.GetValueOrDefault(f.Name, "")))
            .Append(new ColumnDescription("date", "date", null, "The UTC day of the device time (the partition)."))
            .ToList();
    }

    private static readonly Dictionary<string, string> FixedColumns = new()
    {
        ["device"] = "The vehicle's device address (lower-case hex).",
        ["station"] = "The weather station's device address (lower-case hex).",
        ["reading_id"] = "The reading's id: keccak-256 of its signed envelope.",
        ["seq"] = "The device's own sequence number.",
        ["device_time"] = "When the device measured (UTC).",
        ["received_at"] = "When the edge received the reading (UTC).",
        ["event_seq"] = "The reading's position in the event store: a total order across devices.",
        ["station_latitude"] = "The station's registered latitude (degrees).",
        ["station_longitude"] = "The station's registered longitude (degrees).",
        ["station_elevation_m"] = "The station's registered elevation (m).",
    };

    /// <summary>
    /// The quality report exactly at <paramref name="snapshot"/>'s checkpoint (an export's manifest names it): the
    /// catalog's when it is there, otherwise only this report, computed on one thread (an export computes it while its
    /// COPY runs on another, so it neither waits for the whole catalog's scan nor takes the COPY's core). The last one
    /// computed per dataset is kept, so exports at the same checkpoint compute it once.
    /// </summary>
    public async Task<QualityReport?> QualityAtAsync(string name, LakeSnapshot snapshot, CancellationToken cancellation)
    {
        if (MarketDatasets.Find(name) is not { } dataset) return null;
        if (_latest.Current is { } latest && latest.Checkpoint == snapshot.Checkpoint) return latest.Datasets[name].Quality;
        Task<QualityReport> report;
        lock (_qualityAt)
        {
            if (!_qualityAt.TryGetValue(name, out var last) || last.Checkpoint != snapshot.Checkpoint || last.Report.IsFaulted)
                _qualityAt[name] = last = (snapshot.Checkpoint, Task.Run(() => QualityAt(dataset, snapshot), CancellationToken.None));
            report = last.Report;
        }
        return await report.WaitAsync(cancellation);
    }

    private QualityReport QualityAt(MarketDataset dataset, LakeSnapshot snapshot)
    {
        using var duck = LakeCatalog.Open(snapshot.Directory, snapshot.Files, _lake.EpochLength);
        LakeCatalog.Execute(duck, "SET threads = 1");
        long rows = 0;
        Read(duck, $"SELECT count(*) FROM {dataset.Name}", r => rows = r.GetInt64(0));
        return Quality(duck, dataset, rows);
    }

    /// <summary>A scan only when the checkpoint moved since the previous catalog.</summary>
    private async Task<CatalogAt> RecomputeAsync(CatalogAt? previous)
    {
        var snapshot = await _lake.SnapshotAsync(CancellationToken.None);
        return previous?.Checkpoint == snapshot.Checkpoint ? previous : new CatalogAt(snapshot.Checkpoint, Compute(snapshot));
    }

    private Dictionary<string, Computed> Compute(LakeSnapshot snapshot)
    {
        using var duck = LakeCatalog.Open(snapshot.Directory, snapshot.Files, _lake.EpochLength);
        var result = new Dictionary<string, Computed>();
        foreach (var dataset in MarketDatasets.All)
        {
            var (device, lat, lon) = (dataset.Shape.DeviceColumn, dataset.Shape.LatitudeColumn, dataset.Shape.LongitudeColumn);
            long rows = 0, devices = 0;
            DateTimeOffset? from = null, until = null, newest = null;
            Read(duck, $"SELECT count(*), min(device_time), max(device_time), count(DISTINCT {device}), max(received_at) FROM {dataset.Name}", r =>
            {
                rows = r.GetInt64(0);
                from = Time(r, 1);
                until = Time(r, 2);
                devices = r.GetInt64(3);
                newest = Time(r, 4);
            });
            var regions = new List<RegionCell>();
            Read(duck, $"""
                SELECT floor({lat}) AS s, floor({lon}) AS w, count(*) FROM {dataset.Name}
                WHERE {lat} IS NOT NULL AND {lon} IS NOT NULL GROUP BY ALL ORDER BY 3 DESC, 1, 2 LIMIT {MaxRegions}
                """, r => regions.Add(new RegionCell(r.GetDouble(0), r.GetDouble(1), r.GetInt64(2))));
            result[dataset.Name] = new Computed(rows, from, until, devices, newest, regions, Quality(duck, dataset, rows));
        }
        return result;
    }

    private static QualityReport Quality(DuckDBConnection duck, MarketDataset dataset, long rows)
    {
        var byReason = new Dictionary<string, long>();
        Read(duck, $"SELECT reason, count(*) FROM reading_rejections WHERE kind = '{dataset.Kind.ToWire()}' GROUP BY reason ORDER BY reason",
            r => byReason[r.GetString(0)] = r.GetInt64(1));
        double? completeness = null, uptime = null, score = null;
        Read(duck, $"SELECT avg(completeness), avg(uptime), avg(quality_score) FROM {LakeCatalog.DeviceQuality} WHERE kind = '{dataset.Kind.ToWire()}'", r =>
        {
            completeness = r.IsDBNull(0) ? null : r.GetDouble(0);
            uptime = r.IsDBNull(1) ? null : r.GetDouble(1);
            score = r.IsDBNull(2) ? null : r.GetDouble(2);
        });
        return new QualityReport(rows, byReason.Values.Sum(), byReason, completeness, uptime, score);
    }

    private static DateTimeOffset? Time(DuckDBDataReader reader, int column) =>
        reader.IsDBNull(column) ? null : new DateTimeOffset(DateTime.SpecifyKind(reader.GetDateTime(column), DateTimeKind.Utc));

    private static void Read(DuckDBConnection duck, string sql, Action<DuckDBDataReader> row)
    {
        using var command = duck.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        while (reader.Read()) row(reader);
    }
}
