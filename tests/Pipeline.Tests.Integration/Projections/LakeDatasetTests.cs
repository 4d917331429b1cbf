using System.Net;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Projections.Lake;
using V = Pipeline.Core.Signals.SignalCatalog.Vehicle;
using W = Pipeline.Core.Signals.SignalCatalog.Weather;

namespace Pipeline.Tests.Integration.Projections;

/// <summary>
/// Known readings through the whole pipeline — edge, processors, projector — and out of every dataset of the lake with
/// exact values and units: raw OBD decoded, vehicle positions coarsened, rejections, hourly and daily aggregates,
/// device quality; and the Parquet files read back by an independent reader.
/// </summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class LakeDatasetTests(StackFixture fixture) : IAsyncLifetime
{
    private readonly DateTimeOffset _started = DateTimeOffset.UtcNow;
    private readonly string _lake = Directory.CreateTempSubdirectory("depin-lake-").FullName;
    private readonly EthKey _car = EthKey.Generate();
    private readonly EthKey _station = EthKey.Generate();
    // Ten past the hour before the test started: the readings' minutes all fall in that one UTC hour.
    private readonly DateTimeOffset _t0 = TenPastThePreviousHour(DateTimeOffset.UtcNow);
    private TestHost _host = null!;
    private readonly Dictionary<string, string> _ids = [];

    public async Task InitializeAsync()
    {
        _host = await TestHost.StartAsync(fixture, Roles.All, new Dictionary<string, string?> { ["Lake:Directory"] = _lake, ["Lake:LocationDecimals"] = "2" }, schema: "it_lake_datasets");
        var owner = EthKey.Generate();
        await Registration.RegisterAsync(_host, _car, DeviceKind.Vehicle, owner);
        await Registration.RegisterAsync(_host, _station, DeviceKind.Weather, owner);

        await SendAsync("car1", _car, 1, _t0, DeviceKind.Vehicle, new() { [V.Latitude] = 52.372849, [V.Longitude] = 4.893561, [V.Speed] = 54.2, [V.Odometer] = 1000.0 }, ["410C1AF8", "41057B"]);
        await SendAsync("car2", _car, 2, _t0.AddSeconds(60), DeviceKind.Vehicle, new() { [V.Latitude] = 52.3739, [V.Longitude] = 4.8941, [V.Speed] = 60, [V.Odometer] = 1000.8 }, ["410C1C20"]);
        await SendAsync("car3", _car, 3, _t0.AddSeconds(90), DeviceKind.Vehicle, new() { [V.Latitude] = 52.374, [V.Longitude] = 4.8942, [V.Speed] = 480 }, []);
        await SendAsync("wx1", _station, 1, _t0, DeviceKind.Weather, new() { [W.Temperature] = 10, [W.Humidity] = 80, [W.Pressure] = 1012.5, [W.WindSpeed] = 3, [W.WindGust] = 5 }, []);
        await SendAsync("wx2", _station, 2, _t0.AddSeconds(60), DeviceKind.Weather, new() { [W.Temperature] = 12, [W.Humidity] = 70, [W.Pressure] = 1013.5, [W.WindSpeed] = 4, [W.WindGust] = 7 }, []);
        await SendAsync("wx3", _station, 3, _t0.AddSeconds(120), DeviceKind.Weather, new() { [W.Temperature] = 11, [W.Humidity] = 75, [W.Pressure] = 1013.0, [W.WindSpeed] = 5, [W.WindGust] = 6 }, []);

        await Streams.PipelineProbe.WaitForProcessorsAsync(_host, _host.RawTopic);
        await LakeProbe.WaitForLakeAsync(_host);
    }

    public async Task DisposeAsync()
    {
        await _host.DisposeAsync();
        Directory.Delete(_lake, recursive: true);
    }

    [Fact]
    public async Task VehicleSignals_HaveDecodedObdTypedColumnsAndCoarsenedPositions()
    {
        using var lake = await LakeProbe.OpenAsync(_host, _lake);
        var rows = LakeProbe.Query(lake, $"SELECT * FROM vehicle_signals WHERE device = '{_car.Address.ToLowerHex()}' ORDER BY seq");
        Assert.Equal(2, rows.Count);
        var first = rows[0];
        Assert.Equal(_ids["car1"], first["reading_id"]);
        Assert.Equal(1L, first["seq"]);
        Assert.Equal(52.37, (double)first["latitude"]!);     // 52.372849 coarsened to 2 decimals
        Assert.Equal(4.89, (double)first["longitude"]!);
        Assert.Equal(54.2, (double)first["speed_kmh"]!);
        Assert.Equal(1726.0, (double)first["engine_rpm"]!);  // 410C1AF8: (26·256 + 248)/4
        Assert.Equal(83.0, (double)first["coolant_temp_c"]!); // 41057B: 123 − 40
        Assert.Equal(1000.0, (double)first["odometer_km"]!);
        Assert.Null(first["fuel_level_pct"]);
        Assert.Equal(_t0.UtcDateTime, Utc(first["device_time"]));
        Assert.Equal(DateOnly.FromDateTime(_t0.UtcDateTime), (DateOnly)first["date"]!);
        Assert.Equal(1800.0, (double)rows[1]["engine_rpm"]!); // 410C1C20
        Assert.Empty(LakeProbe.Query(lake, "SELECT * FROM vehicle_signals WHERE latitude <> round(latitude, 2) OR longitude <> round(longitude, 2)"));
    }

    [Fact]
    public async Task WeatherObservations_CarryTheStationsPlace_AndHourlyAggregatesAreExactUtcHours()
    {
        using var lake = await LakeProbe.OpenAsync(_host, _lake);
        var station = _station.Address.ToLowerHex();
        var rows = LakeProbe.Query(lake, $"SELECT * FROM weather_observations WHERE station = '{station}' ORDER BY seq");
        Assert.Equal([10.0, 12.0, 11.0], rows.Select(r => (double)r["temperature_c"]!));
        Assert.All(rows, r => Assert.Equal((53.35, -6.26, 71.0), ((double)r["station_latitude"]!, (double)r["station_longitude"]!, (double)r["station_elevation_m"]!)));
        Assert.Equal(_ids["wx2"], rows[1]["reading_id"]);

        Assert.Equal("UTC", Assert.Single(LakeProbe.Query(lake, "SELECT current_setting('TimeZone') AS zone"))["zone"]);
        var hour = Assert.Single(LakeProbe.Query(lake, $"SELECT * FROM weather_hourly WHERE station = '{station}'"));
        var utcHour = new DateTime(_t0.Year, _t0.Month, _t0.Day, _t0.Hour, 0, 0, DateTimeKind.Utc);
        Assert.Equal(utcHour, Utc(hour["hour"]));
        Assert.Equal(3L, hour["readings"]);
        Assert.Equal((10.0, 12.0, 11.0), ((double)hour["temperature_min_c"]!, (double)hour["temperature_max_c"]!, (double)hour["temperature_mean_c"]!));
        Assert.Equal(1013.0, (double)hour["pressure_mean_hpa"]!, 9);
        Assert.Equal(7.0, (double)hour["wind_gust_max_ms"]!);
        Assert.Equal(5.0, (double)hour["wind_speed_max_ms"]!);
        Assert.Equal(3 / 60.0, Convert.ToDouble(hour["coverage"]), 9);

        // A session in India (UTC+5:30), as a query could set it or a machine's zone would give it: a bucket by local
        // hours would start at half past a UTC hour. The views bucket by UTC hours all the same.
        LakeCatalog.Execute(lake, "SET TimeZone = 'Asia/Kolkata'");
        var elsewhere = Assert.Single(LakeProbe.Query(lake, $"SELECT * FROM weather_hourly WHERE station = '{station}'"));
        Assert.Equal(utcHour, Utc(elsewhere["hour"]));
        Assert.Equal((3L, 3 / 60.0), ((long)elsewhere["readings"]!, Convert.ToDouble(elsewhere["coverage"])));
    }

    [Fact]
    public async Task VehicleDaily_AndDeviceQuality_CountWhatWasAcceptedAndRejected()
    {
        using var lake = await LakeProbe.OpenAsync(_host, _lake);
        var car = _car.Address.ToLowerHex();
        var day = Assert.Single(LakeProbe.Query(lake, $"SELECT * FROM vehicle_daily WHERE device = '{car}'"));
        Assert.Equal(2L, day["readings"]);
        Assert.Equal(0.8, (double)day["distance_km"]!, 9);
        Assert.Equal(60.0, (double)day["speed_max_kmh"]!);
        Assert.Equal(2L, day["active_minutes"]);

        var rejection = Assert.Single(LakeProbe.Query(lake, $"SELECT * FROM reading_rejections WHERE device = '{car}'"));
        Assert.Equal(("out_of_range", "vehicle", _ids["car3"], 3L), ((string)rejection["reason"]!, (string)rejection["kind"]!, (string)rejection["reading_id"]!, (long)rejection["seq"]!));
        var receivedAt = Utc(rejection["received_at"]);
        Assert.InRange(receivedAt, _started.UtcDateTime, DateTime.UtcNow);

        // Accepted readings count in the epoch (1 h) of their device time, rejections in the epoch they were received.
        // The readings are dated in the hour before the test started and the rejection was received after it started,
        // so they fall in two epochs, whatever the clock.
        var quality = LakeProbe.Query(lake, $"SELECT * FROM device_quality WHERE device = '{car}' ORDER BY epoch");
        Assert.Equal(2, quality.Count);
        var (collected, received) = (quality[0], quality[1]);
        Assert.Equal(HourEpoch(_t0.UtcDateTime), (long)collected["epoch"]!);
        Assert.Equal((2L, 0L), ((long)collected["accepted"]!, (long)collected["rejected"]!));
        Assert.Equal(2 / 60.0, Convert.ToDouble(collected["uptime"]), 9);
        Assert.Equal(1.0, Convert.ToDouble(collected["completeness"]), 9);
        Assert.Equal(1.0, Convert.ToDouble(collected["quality_score"]), 9);
        Assert.Empty((System.Collections.IDictionary)collected["rejections_by_reason"]!);

        Assert.Equal(HourEpoch(receivedAt), (long)received["epoch"]!);
        Assert.Equal(new DateTime(receivedAt.Year, receivedAt.Month, receivedAt.Day, receivedAt.Hour, 0, 0, DateTimeKind.Utc), Utc(received["epoch_start"]));
        Assert.Equal((0L, 1L), ((long)received["accepted"]!, (long)received["rejected"]!));
        Assert.Equal((0.0, 0.0), (Convert.ToDouble(received["uptime"]), Convert.ToDouble(received["quality_score"])));
        var reasons = (System.Collections.IDictionary)received["rejections_by_reason"]!;
        Assert.Single(reasons);
        Assert.Equal(1UL, Convert.ToUInt64(reasons["out_of_range"]));
    }

    [Fact]
    public async Task Metrics_CountWhatEachStageDidWithTheKnownReadings()
    {
        var scrape = await PrometheusScrape.FromAsync(_host.Api);
        Assert.Equal(6, scrape.Value("pipeline_ingest_readings_accepted_total", "transport=\"http\""));
        Assert.Equal(5, scrape.Value("pipeline_streams_messages_total", "verdict=\"accepted\""));
        Assert.Equal(1, scrape.Value("pipeline_streams_messages_total", "verdict=\"rejected_signed\""));
        Assert.Equal(1, scrape.Value("pipeline_streams_rejected_total", "reason=\"out_of_range\""));
        Assert.True(scrape.Has("pipeline_streams_lag"));
        Assert.Equal(2, scrape.Value("pipeline_lake_rows_total", "dataset=\"vehicle_signals\""));
        Assert.Equal(3, scrape.Value("pipeline_lake_rows_total", "dataset=\"weather_observations\""));
        Assert.Equal(1, scrape.Value("pipeline_lake_rows_total", "dataset=\"reading_rejections\""));
        // From the edge receiving the newest projected reading (after this test started) until it was queryable.
        var lag = scrape.Value("pipeline_lake_lag_seconds");
        var sinceStart = (DateTimeOffset.UtcNow - _started).TotalSeconds;
        Assert.True(lag > 0 && lag < sinceStart, $"lake lag {lag} s, not within the {sinceStart} s since the test started");
    }

    [Fact]
    public async Task ParquetFiles_ReadBackByParquetNet_HaveTheSchemaRowsAndValues()
    {
        var files = await _host.Lake.Manifest(LakeProjector.LiveLake).FilesAsync(CancellationToken.None);
        Assert.Contains(files, f => f.Dataset == LakeDatasets.VehicleSignals);
        var car1Rows = 0;
        foreach (var file in files)
        {
            var path = Path.Combine(_lake, file.Path);
            Assert.Equal(file.Sha256, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(path))));
            await using var reader = await Parquet.ParquetReader.CreateAsync(path);
            var expected = LakeDatasets.All.Single(d => d.Name == file.Dataset).Schema;
            var fields = reader.Schema.GetDataFields();
            Assert.Equal(expected.FieldsList.Select(f => f.Name), fields.Select(f => f.Name));
            Assert.Equal(file.Rows, (int)Enumerable.Range(0, reader.RowGroupCount).Sum(g => reader.OpenRowGroupReader(g).RowCount));
            if (file.Dataset != LakeDatasets.VehicleSignals) continue;

            for (var g = 0; g < reader.RowGroupCount; g++)
            {
                using var group = reader.OpenRowGroupReader(g);
                var count = (int)group.RowCount;
                var ids = new string[count];
                var speeds = new double?[count];
                var rpm = new double?[count];
                await group.ReadAsync(fields.Single(f => f.Name == "reading_id"), ids, null);
                await group.ReadAsync<double>(fields.Single(f => f.Name == "speed_kmh"), speeds, null);
                await group.ReadAsync<double>(fields.Single(f => f.Name == "engine_rpm"), rpm, null);
                for (var row = 0; row < count; row++)
                {
                    if (ids[row] != _ids["car1"]) continue;
                    car1Rows++;
                    Assert.Equal(54.2, speeds[row]);
                    Assert.Equal(1726.0, rpm[row]);
                }
            }
        }
        Assert.Equal(1, car1Rows);
    }

    /// <summary>DuckDB.NET gives a TIMESTAMPTZ as a DateTime of unspecified kind holding the UTC time.</summary>
    private static DateTime Utc(object? value) => DateTime.SpecifyKind((DateTime)value!, DateTimeKind.Utc);

    private static DateTimeOffset TenPastThePreviousHour(DateTimeOffset now) => new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, 10, 0, TimeSpan.Zero).AddHours(-1);

    private static long HourEpoch(DateTime utc) => new DateTimeOffset(utc, TimeSpan.Zero).ToUnixTimeSeconds() / 3600;

    private async Task SendAsync(string name, EthKey key, long seq, DateTimeOffset at, DeviceKind kind, Dictionary<string, double> signals, string[] obd)
    {
        var payload = ReadingWriter.Payload(key.Address, seq, at, kind, signals, obd);
        _ids[name] = ReadingWriter.IdOf(payload);
        var response = await _host.Ingest.PostAsync("/v1/readings", new ByteArrayContent(ReadingWriter.Sign(key, payload)) { Headers = { ContentType = new("application/json") } });
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
    }
}
