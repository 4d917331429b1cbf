using System.Globalization;
using Apache.Arrow.Types;
using DuckDB.NET.Data;

namespace Pipeline.Projections.Lake;

/// <summary>
/// DuckDB over the lake: a view per written dataset that reads exactly the manifest's files (hive-partitioned by date,
/// so a filter on date skips whole files), and views for the aggregates and device quality on top. Nothing is copied.
/// Hours and minutes are UTC buckets (time_bucket on a TIMESTAMPTZ defaults to UTC, where date_trunc would use the
/// session's time zone), and the session itself is set to UTC, so the machine's zone changes nothing.
/// </summary>
public static class LakeCatalog
{
    public const string WeatherHourly = "weather_hourly";
    public const string VehicleDaily = "vehicle_daily";
    public const string DeviceQuality = "device_quality";

    /// <summary>
    /// A new in-memory DuckDB with the lake's views, its session in UTC; with <paramref name="throughSequence"/>, only the
    /// rows of events up to that sequence (the lake as it was then, for a result that must not change later).
    /// </summary>
    public static DuckDBConnection Open(string lakeDirectory, IReadOnlyList<LakeFile> files, TimeSpan epochLength, long? throughSequence = null)
    {
        var connection = new DuckDBConnection("DataSource=:memory:");
        try
        {
            connection.Open();
            Execute(connection, "SET TimeZone = 'UTC'");
            CreateViews(connection, lakeDirectory, files, epochLength, throughSequence);
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    private static void CreateViews(DuckDBConnection connection, string lakeDirectory, IReadOnlyList<LakeFile> files, TimeSpan epochLength, long? throughSequence)
    {
        var through = throughSequence is { } last ? $" WHERE event_seq <= {last.ToString(CultureInfo.InvariantCulture)}" : "";
        foreach (var dataset in LakeDatasets.All)
        {
            var paths = files.Where(f => f.Dataset == dataset.Name).Select(f => Quote(Path.Combine(lakeDirectory, f.Path))).ToList();
            Execute(connection, paths.Count == 0
                ? $"CREATE OR REPLACE VIEW {dataset.Name} AS SELECT {string.Join(", ", dataset.Schema.FieldsList.Select(f => $"CAST(NULL AS {DuckType(f.DataType)}) AS {f.Name}"))}, CAST(NULL AS DATE) AS date WHERE false"
                : $"CREATE OR REPLACE VIEW {dataset.Name} AS SELECT * FROM read_parquet([{string.Join(", ", paths)}], hive_partitioning = true, hive_types = {{'date': DATE}}){through}");
        }
        var epochSeconds = ((long)epochLength.TotalSeconds).ToString(CultureInfo.InvariantCulture);
        Execute(connection, $"""
            CREATE OR REPLACE VIEW {WeatherHourly} AS
            SELECT station, date, time_bucket(INTERVAL 1 hour, device_time) AS hour,
                   count(*) AS readings,
                   least(1.0, count(DISTINCT time_bucket(INTERVAL 1 minute, device_time)) / 60.0) AS coverage,
                   min(temperature_c) AS temperature_min_c, max(temperature_c) AS temperature_max_c, avg(temperature_c) AS temperature_mean_c,
                   min(humidity_pct) AS humidity_min_pct, max(humidity_pct) AS humidity_max_pct, avg(humidity_pct) AS humidity_mean_pct,
                   min(pressure_hpa) AS pressure_min_hpa, max(pressure_hpa) AS pressure_max_hpa, avg(pressure_hpa) AS pressure_mean_hpa,
                   avg(wind_speed_ms) AS wind_speed_mean_ms, max(wind_speed_ms) AS wind_speed_max_ms, max(wind_gust_ms) AS wind_gust_max_ms,
                   avg(precipitation_mmh) AS precipitation_mean_mmh, max(precipitation_mmh) AS precipitation_max_mmh,
                   avg(solar_irradiance_wm2) AS solar_irradiance_mean_wm2, max(solar_irradiance_wm2) AS solar_irradiance_max_wm2,
                   max(uv_index) AS uv_index_max
            FROM weather_observations
            GROUP BY station, date, time_bucket(INTERVAL 1 hour, device_time)
            """);
        Execute(connection, $"""
            CREATE OR REPLACE VIEW {VehicleDaily} AS
            SELECT device, date,
                   count(*) AS readings,
                   count(DISTINCT time_bucket(INTERVAL 1 minute, device_time)) AS active_minutes,
                   count(DISTINCT time_bucket(INTERVAL 1 minute, device_time)) / 1440.0 AS coverage,
                   max(odometer_km) - min(odometer_km) AS distance_km,
                   min(speed_kmh) AS speed_min_kmh, max(speed_kmh) AS speed_max_kmh, avg(speed_kmh) AS speed_mean_kmh,
                   max(engine_rpm) AS engine_rpm_max, avg(engine_load_pct) AS engine_load_mean_pct,
                   min(coolant_temp_c) AS coolant_temp_min_c, max(coolant_temp_c) AS coolant_temp_max_c,
                   min(fuel_level_pct) AS fuel_level_min_pct, max(fuel_level_pct) AS fuel_level_max_pct,
                   min(soc_pct) AS soc_min_pct, max(soc_pct) AS soc_max_pct
            FROM vehicle_signals
            GROUP BY device, date
            """);
        Execute(connection, $"""
            CREATE OR REPLACE VIEW {DeviceQuality} AS
            WITH readings AS (
                SELECT device, 'vehicle' AS kind, device_time,
                       (speed_kmh IS NOT NULL)::INT + (latitude IS NOT NULL)::INT + (longitude IS NOT NULL)::INT AS present, 3 AS expected
                FROM vehicle_signals
                UNION ALL
                SELECT station, 'weather', device_time,
                       (temperature_c IS NOT NULL)::INT + (humidity_pct IS NOT NULL)::INT + (pressure_hpa IS NOT NULL)::INT + (wind_speed_ms IS NOT NULL)::INT, 4
                FROM weather_observations),
            -- Completeness as a quotient of whole counts, not a mean of fractions: a sum of doubles depends on the order
            -- of the rows, and rewards read this column (it must come out the same from a compacted or rebuilt lake).
            accepted AS (
                SELECT device, any_value(kind) AS kind, CAST(floor(epoch(device_time) / {epochSeconds}) AS BIGINT) AS epoch,
                       count(*) AS accepted,
                       count(DISTINCT CAST(floor(epoch(device_time) / 60) AS BIGINT)) AS active_minutes,
                       CAST(sum(present) AS DOUBLE) / sum(expected) AS completeness
                FROM readings GROUP BY ALL),
            rejected AS (
                SELECT device, any_value(kind) AS kind, CAST(floor(epoch(received_at) / {epochSeconds}) AS BIGINT) AS epoch,
                       count(*) AS rejected,
                       count(*) FILTER (WHERE reason = 'seq_conflict') AS equivocations,
                       histogram(reason) AS rejections_by_reason
                FROM reading_rejections GROUP BY ALL)
            SELECT coalesce(a.device, r.device) AS device,
                   coalesce(a.kind, r.kind) AS kind,
                   coalesce(a.epoch, r.epoch) AS epoch,
                   to_timestamp(coalesce(a.epoch, r.epoch) * {epochSeconds}) AS epoch_start,
                   coalesce(a.accepted, 0) AS accepted,
                   coalesce(r.rejected, 0) AS rejected,
                   least(1.0, coalesce(a.active_minutes, 0) / ({epochSeconds} / 60.0)) AS uptime,
                   coalesce(a.completeness, 0) AS completeness,
                   coalesce(r.equivocations, 0) AS equivocations,
                   coalesce(r.rejections_by_reason, {EmptyReasonMap}) AS rejections_by_reason,
                   coalesce(a.completeness, 0)
                     * coalesce(a.accepted, 0) / greatest(1, coalesce(a.accepted, 0) + coalesce(r.rejected, 0))
                     * CASE WHEN coalesce(r.equivocations, 0) > 0 THEN 0.5 ELSE 1.0 END AS quality_score
            FROM accepted a FULL OUTER JOIN rejected r ON a.device = r.device AND a.epoch = r.epoch
            """);
    }

    /// <summary>
    /// Rows and a content digest per dataset and day, independent of how rows are spread over files: the md5 of the
    /// sorted md5s of the rows. With <paramref name="through"/>, only rows of events up to that sequence count.
    /// </summary>
    public static Dictionary<(string Dataset, DateOnly Date), (long Rows, string Hash)> PartitionHashes(DuckDBConnection connection, long? through = null)
    {
        var hashes = new Dictionary<(string, DateOnly), (long, string)>();
        foreach (var dataset in LakeDatasets.All)
        {
            using var command = connection.CreateCommand();
            var filter = through is { } last ? $"WHERE event_seq <= {last.ToString(CultureInfo.InvariantCulture)}" : "";
            command.CommandText = $"""
                SELECT date, count(*), md5(string_agg(h, '' ORDER BY h))
                FROM (SELECT date, md5(CAST(t AS VARCHAR)) AS h FROM {dataset.Name} t {filter})
                GROUP BY date ORDER BY date
                """;
            using var reader = command.ExecuteReader();
            while (reader.Read()) hashes[(dataset.Name, reader.GetFieldValue<DateOnly>(0))] = (reader.GetInt64(1), reader.GetString(2));
        }
        return hashes;
    }

    private const string EmptyReasonMap = "MAP {}::MAP(VARCHAR, UBIGINT)";

    /// <summary>Runs a statement that returns no rows.</summary>
    public static void Execute(DuckDBConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    /// <summary>A string as a SQL literal.</summary>
    internal static string Quote(string path) => "'" + path.Replace("'", "''", StringComparison.Ordinal) + "'";

    private static string DuckType(IArrowType type) => type switch
    {
        StringType => "VARCHAR",
        Int64Type => "BIGINT",
        TimestampType => "TIMESTAMPTZ",
        DoubleType => "DOUBLE",
        _ => throw new NotSupportedException(type.Name),
    };
}
