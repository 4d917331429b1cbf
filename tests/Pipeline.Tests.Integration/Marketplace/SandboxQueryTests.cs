using System.Globalization;
using System.Text;
using System.Text.Json;
using Apache.Arrow;
using Apache.Arrow.Ipc;
using Pipeline.Marketplace.Sandbox;

namespace Pipeline.Tests.Integration.Marketplace;

/// <summary>Queries that may run: the rows they see are exactly the grant's, in every format, metered and capped.</summary>
[Trait("Category", "Integration")]
public sealed class SandboxQueryTests(MarketLakeFixture fixture) : IClassFixture<MarketLakeFixture>
{
    private static readonly DateTimeOffset Nov23 = new(2026, 11, 23, 0, 0, 0, TimeSpan.Zero);
    private MarketLake Lake => fixture.Lake;

    [Fact]
    public async Task Query_GrantWithTimeBoxAndDevices_SeesExactlyTheGrantedRows()
    {
        var rows = new RowRestriction(Nov23.AddHours(6), Nov23.AddHours(30), new BoundingBox(52.3, -7, 53.5, -6.5), [MarketLake.Devices[0], MarketLake.Devices[2]]);
        var expected = Lake.Expected(rows);
        Assert.InRange(expected.Count, 50, Lake.Rows.Count / 4); // the restriction bites on every axis and leaves rows

        using var sandbox = SqlSandbox.Open([Lake.Grant(rows: rows)], new SandboxLimits());
        var (result, json) = await RunJsonAsync(sandbox, "SELECT reading_id FROM vehicle_signals ORDER BY event_seq");

        Assert.Equal(expected.Select(r => r.ReadingId), json.EnumerateArray().Select(e => e.GetProperty("reading_id").GetString()));
        Assert.Equal(expected.Count, result.Rows);
        Assert.False(result.Truncated);
    }

    [Theory]
    [InlineData(6, 48)]  // the first day in part (its file keeps the time condition), the second whole (read without it)
    [InlineData(0, 36)]  // the first day whole, the second in part
    [InlineData(0, 48)]  // both days whole: no time condition at all
    [InlineData(6, 30)]  // both in part
    public async Task Query_GrantStartingOrEndingInsideADay_SeesExactlyItsRows(int fromHour, int untilHour)
    {
        var rows = new RowRestriction(Nov23.AddHours(fromHour), Nov23.AddHours(untilHour));
        var expected = Lake.Expected(rows);
        using var sandbox = SqlSandbox.Open([Lake.Grant(rows: rows)], new SandboxLimits());
        var (_, json) = await RunJsonAsync(sandbox, "SELECT reading_id FROM vehicle_signals ORDER BY event_seq");
        Assert.Equal(expected.Select(r => r.ReadingId), json.EnumerateArray().Select(e => e.GetProperty("reading_id").GetString()));
        var (_, bounds) = await RunJsonAsync(sandbox, "SELECT min(device_time) AS first, max(device_time) AS last FROM vehicle_signals");
        Assert.InRange(DateTimeOffset.Parse(bounds[0].GetProperty("first").GetString()!, CultureInfo.InvariantCulture), rows.From, rows.Until!.Value);
        Assert.InRange(DateTimeOffset.Parse(bounds[0].GetProperty("last").GetString()!, CultureInfo.InvariantCulture), rows.From, rows.Until!.Value.AddTicks(-1));
    }

    [Fact]
    public async Task Query_Aggregate_CountsOnlyGrantedFilesAndRows()
    {
        // The third day's file lies in the same lake; the grant names the first two only.
        using var sandbox = SqlSandbox.Open([Lake.Grant()], new SandboxLimits());
        var (_, json) = await RunJsonAsync(sandbox, "SELECT count(*) AS n, max(date) AS last_day, count(DISTINCT device) AS devices FROM vehicle_signals");

        var row = json[0];
        Assert.Equal(2 * 3 * MarketLake.RowsPerDevicePerDay, row.GetProperty("n").GetInt64());
        Assert.Equal("2026-11-24", row.GetProperty("last_day").GetString());
        Assert.Equal(3, row.GetProperty("devices").GetInt64());
    }

    [Theory]
    [InlineData("SELECT * FROM vehicle_signals WHERE date = DATE '2026-11-25'")]
    [InlineData("SELECT * FROM vehicle_signals WHERE device_time < TIMESTAMPTZ '2026-11-23 06:00:00+00'")]
    [InlineData("SELECT * FROM vehicle_signals WHERE device = '0x00000000000000000000000000000000000000b2'")]
    [InlineData("SELECT * FROM vehicle_signals WHERE latitude > 53.5 OR longitude < -7")]
    public async Task Query_AskingForRowsOutsideTheGrant_FindsNone(string sql)
    {
        var rows = new RowRestriction(Nov23.AddHours(6), null, new BoundingBox(52, -7, 53.5, -5), [MarketLake.Devices[0], MarketLake.Devices[2]]);
        using var sandbox = SqlSandbox.Open([Lake.Grant(rows: rows)], new SandboxLimits());
        var (result, _) = await RunJsonAsync(sandbox, sql);
        Assert.Equal(0, result.Rows);
    }

    [Fact]
    public void CountShares_Grant_CountsRowsPerDeviceAndEpochOfTheSliceOnly()
    {
        var rows = new RowRestriction(Nov23.AddHours(6), null, null, [MarketLake.Devices[0], MarketLake.Devices[1]]);
        using var sandbox = SqlSandbox.Open([Lake.Grant(rows: rows)], new SandboxLimits());

        var shares = sandbox.CountShares("vehicle_signals", TimeSpan.FromHours(12), TimeSpan.FromSeconds(30));

        var expected = Lake.Expected(rows)
            .GroupBy(r => (r.Device, Epoch: r.DeviceTime.ToUnixTimeSeconds() / (12 * 3600)))
            .Select(g => (g.Key.Device, g.Key.Epoch, (long)g.Count())).Order();
        Assert.Equal(expected, shares.Select(s => (s.Device, s.Epoch, s.Rows)));
    }

    [Fact]
    public void CountShares_OfASliceLargerThanTheQuerysTimeLeft_IsStoppedAtItAndRefusedTimeout_NotAnsweredInPart()
    {
        // 30 million rows in one day's file: counting them per device and epoch takes far longer than 50 ms.
        var folder = Path.Combine(Path.GetTempPath(), "market-large-" + Guid.NewGuid().ToString("n"));
        try
        {
            var table = MarketLake.LargeSlice(folder);
            using var sandbox = SqlSandbox.Open([table], new SandboxLimits());

            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            var refused = Assert.Throws<SandboxRefusedException>(() => sandbox.CountShares("vehicle_signals", TimeSpan.FromHours(1), TimeSpan.FromMilliseconds(50)));
            var took = System.Diagnostics.Stopwatch.GetElapsedTime(started);

            Assert.Equal(SandboxReason.Timeout, refused.Reason);
            Assert.True(took < TimeSpan.FromSeconds(3), $"The count was stopped only after {took.TotalMilliseconds:0} ms.");
            Assert.Equal(SandboxReason.Timeout, Assert.Throws<SandboxRefusedException>(() => sandbox.CountShares("vehicle_signals", TimeSpan.FromHours(1), TimeSpan.Zero)).Reason);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Theory]
    [InlineData("WITH fast AS (SELECT * FROM vehicle_signals WHERE speed_kmh > 100) SELECT device, count(*) FROM fast GROUP BY ALL ORDER BY ALL")]
    [InlineData("SELECT device, seq, speed_kmh - lag(speed_kmh) OVER (PARTITION BY device ORDER BY seq) AS delta FROM vehicle_signals QUALIFY delta = 1")]
    [InlineData("SELECT a.device, count(*) FROM vehicle_signals a JOIN vehicle_signals b USING (reading_id) GROUP BY 1")]
    [InlineData("SELECT time_bucket(INTERVAL 1 hour, device_time) AS hour, avg(speed_kmh), quantile_cont(speed_kmh, 0.9) FROM vehicle_signals GROUP BY ALL")]
    [InlineData("SELECT list_transform([speed_kmh, latitude], x -> round(x / 10)) FROM vehicle_signals WHERE speed_kmh IS NOT NULL")]
    [InlineData("SELECT * EXCLUDE (reading_id) FROM vehicle_signals WHERE device ILIKE '0x%a1' ORDER BY seq DESC LIMIT 5")]
    [InlineData("SELECT device FROM vehicle_signals UNION SELECT 'x' EXCEPT SELECT NULL")]
    [InlineData("SELECT x, upper(y) FROM (VALUES (1, 'a'), (2, 'b')) t(x, y)")]
    [InlineData("SELECT CASE WHEN speed_kmh BETWEEN 0 AND 50 THEN 'slow' ELSE 'fast' END, count(*) FILTER (WHERE latitude > 52.5) FROM vehicle_signals GROUP BY 1")]
    [InlineData("SELECT strftime(device_time, '%Y-%m-%d %H'), date_part('hour', device_time), epoch(device_time) FROM vehicle_signals LIMIT 3")]
    public async Task Query_OrdinaryAnalytics_Runs_AndGivesTheSameResultWhenCountedForAttribution(string sql)
    {
        using var sandbox = SqlSandbox.Open([Lake.Grant()], new SandboxLimits());
        var (result, json) = await RunJsonAsync(sandbox, sql);
        Assert.Equal(json.GetArrayLength(), result.Rows);
        Assert.True(result.Rows > 0);

        // Counted per device and epoch, as the API runs it (carrying the view's device along where it can), it shows the
        // same columns and as many rows (which rows among ties a LIMIT keeps may differ between two plans).
        var (counted, countedJson) = await RunJsonAsync(sandbox, sql, TimeSpan.FromHours(1));
        Assert.Equal(result.Columns, counted.Columns);
        Assert.Equal(json.GetArrayLength(), countedJson.GetArrayLength());
    }

    [Theory]
    [InlineData("SELECT device_time, speed_kmh FROM vehicle_signals WHERE device = '0x00000000000000000000000000000000000000b2' AND speed_kmh > 20", true)]
    [InlineData("SELECT v.speed_kmh AS device, v.latitude FROM vehicle_signals AS v WHERE v.speed_kmh > (SELECT avg(speed_kmh) FROM vehicle_signals) ORDER BY v.event_seq LIMIT 70", true)]
    [InlineData("SELECT '0x00000000000000000000000000000000000000a1' AS device, device_time FROM vehicle_signals WHERE seq % 3 = 0", true)]
    [InlineData("SELECT * FROM vehicle_signals WHERE speed_kmh < 30", true)]
    [InlineData("SELECT count(*) AS n FROM vehicle_signals WHERE speed_kmh > 20", false)]
    [InlineData("SELECT DISTINCT date FROM vehicle_signals", false)]
    [InlineData("SELECT device, max(speed_kmh) FROM vehicle_signals GROUP BY device", false)]
    [InlineData("WITH fast AS (SELECT * FROM vehicle_signals WHERE speed_kmh > 20) SELECT device_time FROM fast", false)]
    public async Task Query_WhoseRowsAreTheViewsOneForOne_IsCountedPerDeliveredDevice_EvenWithoutTheDeviceColumn(string sql, bool oneForOne)
    {
        using var sandbox = SqlSandbox.Open([Lake.Grant()], new SandboxLimits());
        var (plain, json) = await RunJsonAsync(sandbox, sql);
        var (counted, countedJson) = await RunJsonAsync(sandbox, sql, TimeSpan.FromHours(1));

        Assert.Equal(json.GetRawText(), countedJson.GetRawText()); // the carried columns are not delivered
        Assert.Equal(plain.Columns, counted.Columns);
        Assert.Equal(oneForOne, counted.Delivered is not null);
        if (!oneForOne) return;
        // The same query with the device and time in view: what it delivered, per device and hour.
        var withDevice = sql.Replace(" FROM vehicle_signals AS v WHERE", ", v.device AS d, v.device_time AS t FROM vehicle_signals AS v WHERE", StringComparison.Ordinal);
        if (withDevice == sql) withDevice = sql.Replace(" FROM vehicle_signals WHERE", ", vehicle_signals.device AS d, vehicle_signals.device_time AS t FROM vehicle_signals WHERE", StringComparison.Ordinal);
        var (_, truth) = await RunJsonAsync(sandbox, withDevice);
        var expected = truth.EnumerateArray()
            .GroupBy(r => (Device: r.GetProperty("d").GetString()!, Epoch: DateTimeOffset.Parse(r.GetProperty("t").GetString()!, CultureInfo.InvariantCulture).ToUnixTimeSeconds() / 3600))
            .Select(g => (g.Key.Device, g.Key.Epoch, (long)g.Count())).Order();
        Assert.Equal(expected, counted.Delivered!.Select(s => (s.Device, s.Epoch, s.Rows)).Order());
        Assert.Equal(counted.Rows, counted.Delivered!.Sum(s => s.Rows));
    }

    [Fact]
    public async Task Query_TwoGrants_JoinsThemByName()
    {
        var day1 = Lake.Grant("day_one", new RowRestriction(Nov23, Nov23.AddDays(1)));
        var day2 = Lake.Grant("day_two", new RowRestriction(Nov23.AddDays(1), Nov23.AddDays(2)));
        using var sandbox = SqlSandbox.Open([day1, day2], new SandboxLimits());
        var (_, json) = await RunJsonAsync(sandbox, "SELECT (SELECT count(*) FROM day_one) AS a, (SELECT count(*) FROM day_two) AS b");
        Assert.Equal(3 * MarketLake.RowsPerDevicePerDay, json[0].GetProperty("a").GetInt64());
        Assert.Equal(3 * MarketLake.RowsPerDevicePerDay, json[0].GetProperty("b").GetInt64());
        var refused = await Assert.ThrowsAsync<SandboxRefusedException>(() => RunJsonAsync(sandbox, "SELECT * FROM vehicle_signals"));
        Assert.Equal(SandboxReason.UnknownTable, refused.Reason);
    }

    [Fact]
    public async Task Query_Json_WritesObjectsWithIsoTimesAndEchoesTheCheckpoint()
    {
        using var sandbox = SqlSandbox.Open([Lake.Grant()], new SandboxLimits());
        using var output = new MemoryStream();
        var result = await sandbox.RunAsync("SELECT reading_id, device_time, date, speed_kmh, count(*) OVER () AS n FROM vehicle_signals ORDER BY event_seq LIMIT 2", ResultFormat.Json, output, 100, 4242, CancellationToken.None);

        var first = JsonDocument.Parse(output.ToArray()).RootElement[0];
        var row = Lake.Rows[0];
        Assert.Equal(row.ReadingId, first.GetProperty("reading_id").GetString());
        Assert.Equal(row.DeviceTime.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture), first.GetProperty("device_time").GetString());
        Assert.Equal("2026-11-23", first.GetProperty("date").GetString());
        Assert.Equal(JsonValueKind.Null, first.GetProperty("speed_kmh").ValueKind); // the generator leaves every tenth speed out
        Assert.Equal(4242, result.LakeCheckpoint);
        Assert.Equal(output.Length, result.Bytes);
        Assert.Equal(["reading_id", "device_time", "date", "speed_kmh", "n"], result.Columns);
    }

    [Fact]
    public async Task Query_Csv_WritesHeaderAndOneLinePerRow()
    {
        using var sandbox = SqlSandbox.Open([Lake.Grant()], new SandboxLimits());
        using var output = new MemoryStream();
        var result = await sandbox.RunAsync("SELECT device, seq, 'a,\"b\"' AS quoted, speed_kmh FROM vehicle_signals ORDER BY event_seq LIMIT 3", ResultFormat.Csv, output, 100, 1, CancellationToken.None);

        var lines = Encoding.UTF8.GetString(output.ToArray()).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("device,seq,quoted,speed_kmh", lines[0]);
        var row = Lake.Rows[0];
        Assert.Equal($"{row.Device},{row.Seq},\"a,\"\"b\"\"\",", lines[1]);
        Assert.Equal(4, lines.Length);
        Assert.Equal(3, result.Rows);
        Assert.Equal(output.Length, result.Bytes);
    }

    [Theory]
    [InlineData("SELECT device, device_time, date, seq, speed_kmh, latitude, NULL AS nothing, '' AS empty, 'a,\"b\"' || chr(13) || chr(10) || 'é 😀' AS \"awkward, \"\"name\"\"\" FROM vehicle_signals ORDER BY event_seq")]
    [InlineData(TypesQuery)]
    public async Task Query_Csv_ReadBySylvan_HoldsTheJsonResultsValues(string sql)
    {
        using var sandbox = SqlSandbox.Open([Lake.Grant()], new SandboxLimits());
        using var output = new MemoryStream();
        var result = await sandbox.RunAsync(sql, ResultFormat.Csv, output, 10_000, 1, CancellationToken.None);
        var (_, json) = await RunJsonAsync(sandbox, sql);

        using var csv = Sylvan.Data.Csv.CsvDataReader.Create(new StreamReader(new MemoryStream(output.ToArray()), Encoding.UTF8), new() { Delimiter = ',' });
        Assert.Equal(result.Columns, Enumerable.Range(0, csv.FieldCount).Select(csv.GetName));
        var rows = new List<string[]>();
        while (csv.Read()) rows.Add(Enumerable.Range(0, csv.FieldCount).Select(csv.GetString).ToArray());
        // Each field is the JSON result's value as text: strings unquoted, numbers and nested values as JSON writes them, null empty.
        var expected = json.EnumerateArray().Select(row => result.Columns.Select(c => row.GetProperty(c) switch
        {
            { ValueKind: JsonValueKind.String } s => s.GetString()!,
            { ValueKind: JsonValueKind.Null } => "",
            var other => other.GetRawText(),
        }).ToArray()).ToList();
        Assert.Equal(expected, rows);
        Assert.Equal(rows.Count, result.Rows);
        Assert.Equal(output.Length, result.Bytes);
        if (sql != TypesQuery)
        {
            Assert.InRange(rows.Count, 1000, 10_000);
            // A null is nothing, an empty text is quoted, so a reader tells them apart.
            Assert.Contains(",,\"\",\"a,\"\"b\"\"\r\né 😀\"\r\n", Encoding.UTF8.GetString(output.ToArray()));
        }
    }

    [Fact]
    public async Task Query_ArrowIpc_ReadsBackAsTheSameRows()
    {
        using var sandbox = SqlSandbox.Open([Lake.Grant()], new SandboxLimits());
        using var output = new MemoryStream();
        var result = await sandbox.RunAsync("SELECT reading_id, speed_kmh FROM vehicle_signals ORDER BY event_seq", ResultFormat.ArrowIpc, output, 5000, 1, CancellationToken.None);

        output.Position = 0;
        using var reader = new ArrowStreamReader(output);
        var ids = new List<string>();
        while (await reader.ReadNextRecordBatchAsync() is { } batch)
            using (batch)
            {
                var column = (StringArray)batch.Column("reading_id");
                for (var i = 0; i < batch.Length; i++) ids.Add(column.GetString(i));
            }
        Assert.Equal(Lake.Expected(new RowRestriction(Nov23, null)).OrderBy(r => r.EventSeq).Select(r => r.ReadingId), ids);
        Assert.Equal(ids.Count, result.Rows);
        Assert.Equal(output.Length, result.Bytes);
    }

    [Fact]
    public async Task Query_Parquet_ReadBackByParquetNet_HoldsTheSameRows()
    {
        using var sandbox = SqlSandbox.Open([Lake.Grant()], new SandboxLimits());
        using var output = new MemoryStream();
        var result = await sandbox.RunAsync("SELECT event_seq, reading_id, speed_kmh FROM vehicle_signals ORDER BY event_seq", ResultFormat.Parquet, output, 5000, 1, CancellationToken.None);

        output.Position = 0;
        var rows = await MarketLake.ReadParquetAsync(output);
        var expected = Lake.Expected(new RowRestriction(Nov23, null)).OrderBy(r => r.EventSeq).Select(r => (r.EventSeq, r.ReadingId, r.SpeedKmh));
        Assert.Equal(expected, rows);
        Assert.Equal(rows.Count, result.Rows);
        Assert.Equal(output.Length, result.Bytes);
    }

    [Theory]
    [InlineData(ResultFormat.Json)]
    [InlineData(ResultFormat.Csv)]
    [InlineData(ResultFormat.ArrowIpc)]
    [InlineData(ResultFormat.Parquet)]
    public async Task Query_MoreRowsThanTheQuota_StopsAtTheQuotaAndSaysSo(ResultFormat format)
    {
        using var sandbox = SqlSandbox.Open([Lake.Grant()], new SandboxLimits());
        using var output = new MemoryStream();
        var result = await sandbox.RunAsync("SELECT * FROM vehicle_signals", format, output, 500, 1, CancellationToken.None);
        Assert.Equal(500, result.Rows);
        Assert.True(result.Truncated);

        using var exact = new MemoryStream();
        var whole = await sandbox.RunAsync("SELECT * FROM vehicle_signals LIMIT 500", format, exact, 500, 1, CancellationToken.None);
        Assert.Equal(500, whole.Rows);
        Assert.False(whole.Truncated);
    }

    [Fact]
    public async Task Query_ResultOverTheByteCap_StopsAtTheCap()
    {
        using var sandbox = SqlSandbox.Open([Lake.Grant()], new SandboxLimits { MaxResultBytes = 4096 });
        using var output = new MemoryStream();
        var result = await sandbox.RunAsync("SELECT * FROM vehicle_signals", ResultFormat.Json, output, 100_000, 1, CancellationToken.None);

        Assert.True(result.Truncated);
        Assert.InRange(result.Bytes, 4096, 4096 + 1024); // at most one row past the cap, then the closing bracket
        Assert.Equal(result.Rows, JsonDocument.Parse(output.ToArray()).RootElement.GetArrayLength());
    }

    [Fact]
    public async Task Query_CartesianJoin_IsInterruptedAtTheTimeLimitAndLetsGoOfItsMemory()
    {
        using var sandbox = SqlSandbox.Open([Lake.Grant()], new SandboxLimits { Timeout = TimeSpan.FromSeconds(1), MemoryLimitMegabytes = 128 });
        using var output = new MemoryStream();
        var started = TimeProvider.System.GetTimestamp();

        var stopped = await Assert.ThrowsAsync<SandboxRefusedException>(() => sandbox.RunAsync(
            "SELECT a.device, b.seq, c.seq, d.seq FROM vehicle_signals a, vehicle_signals b, vehicle_signals c, vehicle_signals d ORDER BY a.seq + b.seq * c.seq - d.seq",
            ResultFormat.Json, output, 10, 1, CancellationToken.None));

        Assert.Contains(stopped.Reason, new[] { SandboxReason.Timeout, SandboxReason.OutOfMemory });
        // Interrupted, not run to the end: 1,200⁴ rows would take hours. A generous bound, not a performance claim.
        Assert.True(TimeProvider.System.GetElapsedTime(started) < TimeSpan.FromSeconds(30));
        Assert.True(sandbox.MemoryInUse() < 16 * 1024 * 1024, $"{sandbox.MemoryInUse()} bytes still held");
        // The sandbox still answers.
        var (_, json) = await RunJsonAsync(sandbox, "SELECT count(*) AS n FROM vehicle_signals");
        Assert.Equal(1200, json[0].GetProperty("n").GetInt64());
    }

    [Fact]
    public async Task Query_CpuBoundRunaway_StopsWithTimeout()
    {
        using var sandbox = SqlSandbox.Open([Lake.Grant()], new SandboxLimits { Timeout = TimeSpan.FromMilliseconds(500) });
        var stopped = await Assert.ThrowsAsync<SandboxRefusedException>(() => RunJsonAsync(sandbox,
            "SELECT count(*) FROM vehicle_signals a, vehicle_signals b, vehicle_signals c WHERE a.seq * b.seq = c.seq + 0.5"));
        Assert.Equal(SandboxReason.Timeout, stopped.Reason);
    }

    [Fact]
    public async Task Query_NeedingMoreThanTheMemoryLimit_StopsWithOutOfMemory()
    {
        using var sandbox = SqlSandbox.Open([Lake.Grant()], new SandboxLimits { MemoryLimitMegabytes = 32, Timeout = TimeSpan.FromMinutes(1) });
        var stopped = await Assert.ThrowsAsync<SandboxRefusedException>(() => RunJsonAsync(sandbox,
            "SELECT a.reading_id || b.reading_id AS k, count(*) FROM vehicle_signals a, vehicle_signals b GROUP BY k ORDER BY k LIMIT 1"));
        Assert.Equal(SandboxReason.OutOfMemory, stopped.Reason);
        Assert.True(sandbox.MemoryInUse() < 16 * 1024 * 1024);
    }

    [Theory]
    [InlineData("SELECT no_such_column FROM vehicle_signals")]
    [InlineData("SELECT CAST('x' AS INTEGER)")]
    [InlineData("SELECT * FROM vehicle_signals WHERE device = 1 AND seq = 'x'")]
    public async Task Query_ThatDuckDbCannotRun_FailsWithItsMessage(string sql)
    {
        using var sandbox = SqlSandbox.Open([Lake.Grant()], new SandboxLimits());
        var failed = await Assert.ThrowsAsync<SandboxRefusedException>(() => RunJsonAsync(sandbox, sql));
        Assert.Equal(SandboxReason.QueryFailed, failed.Reason);
        Assert.StartsWith("DuckDB could not run the query: ", failed.Message);
    }

    [Theory]
    [InlineData(ResultFormat.Json)]
    [InlineData(ResultFormat.Csv)]
    [InlineData(ResultFormat.ArrowIpc)]
    [InlineData(ResultFormat.Parquet)]
    public async Task Query_EveryCarriedType_WritesInEveryFormat(ResultFormat format)
    {
        using var sandbox = SqlSandbox.Open([Lake.Grant()], new SandboxLimits());
        using var output = new MemoryStream();
        var result = await sandbox.RunAsync(TypesQuery, format, output, 10, 1, CancellationToken.None);
        Assert.Equal(1, result.Rows);
        Assert.Equal(output.Length, result.Bytes);
    }

    private const string TypesQuery = """
        SELECT NULL AS nothing, true AS yes, 7::TINYINT AS tiny, 7::SMALLINT AS small, 7 AS int, 7::BIGINT AS big, 7::UBIGINT AS ubig,
               sum(seq)::HUGEINT AS huge, 1.25::DECIMAL(10, 2) AS dec, 1.5::FLOAT AS f, 'nan'::DOUBLE AS nan, 'x' AS text,
               DATE '2026-11-23' AS day, TIMESTAMPTZ '2026-11-23 10:00:00.5+00' AS at, [1, NULL, 3] AS list, {'a': 1, 'b': 'c'} AS struct
        FROM vehicle_signals
        """;

    [Fact]
    public async Task Query_Json_WritesNestedAndExactValues()
    {
        using var sandbox = SqlSandbox.Open([Lake.Grant()], new SandboxLimits());
        var (_, json) = await RunJsonAsync(sandbox, TypesQuery);
        var row = json[0];
        Assert.Equal(Lake.Rows.Where(r => r.Date <= MarketLake.Days[1]).Sum(r => r.Seq).ToString(CultureInfo.InvariantCulture), row.GetProperty("huge").GetRawText());
        Assert.Equal("1.25", row.GetProperty("dec").GetRawText());
        Assert.Equal("NaN", row.GetProperty("nan").GetString());
        Assert.Equal("2026-11-23T10:00:00.5Z", row.GetProperty("at").GetString());
        Assert.Equal("[1,null,3]", row.GetProperty("list").GetRawText());
        Assert.Equal("""{"a":1,"b":"c"}""", row.GetProperty("struct").GetRawText());
    }

    [Fact]
    public async Task Query_Json_EscapesTextAndNamesAsSystemTextJsonDoes()
    {
        using var sandbox = SqlSandbox.Open([Lake.Grant()], new SandboxLimits());
        using var output = new MemoryStream();
        const string sql = "SELECT 'é\"\\ <b> 😀' || chr(10) AS \"naïve \"\"name\"\"\" FROM vehicle_signals LIMIT 1";
        await sandbox.RunAsync(sql, ResultFormat.Json, output, 10, 1, CancellationToken.None);
        // Text goes out from DuckDB's UTF-8 as it is: the same bytes as serializing the .NET strings.
        Assert.Equal("[{" + JsonSerializer.Serialize("naïve \"name\"") + ":" + JsonSerializer.Serialize("é\"\\ <b> 😀\n") + "}]", Encoding.UTF8.GetString(output.ToArray()));
    }

    [Fact]
    public void Validate_AStatementThatPassedOverOtherViews_IsStillRefusedHere()
    {
        var validated = new ValidatedStatements(TimeProvider.System);
        const string sql = "SELECT count(*) FROM vehicle_signals WHERE speed_kmh > 20 AND speed_kmh < 90";
        using (var vehicles = SqlSandbox.Open([Lake.Grant()], new SandboxLimits(), validated)) vehicles.Validate(sql);
        // Another buyer's rows: their own verdicts, so the timing of a query tells nothing of what others ran.
        using (var otherRows = SqlSandbox.Open([Lake.Grant(rows: new RowRestriction(Nov23.AddHours(1), null))], new SandboxLimits(), validated))
            Assert.Null(validated.Find(otherRows.Scope, sql));
        using var other = SqlSandbox.Open([Lake.Grant("fleet")], new SandboxLimits(), validated);
        Assert.Equal(SandboxReason.UnknownTable, Assert.Throws<SandboxRefusedException>(() => other.Validate(sql)).Reason);
        using var stricter = SqlSandbox.Open([Lake.Grant()], new SandboxLimits { MaxSqlBytes = 64 }, validated);
        Assert.Equal(SandboxReason.SqlTooLong, Assert.Throws<SandboxRefusedException>(() => stricter.Validate(sql)).Reason);
    }

    [Fact]
    public async Task Query_RememberedFromAnotherSandboxOverTheSameView_DeliversAndAttributesTheSame()
    {
        const string sql = "SELECT device_time, speed_kmh FROM vehicle_signals WHERE speed_kmh > 20";
        var validated = new ValidatedStatements(TimeProvider.System);
        using var first = SqlSandbox.Open([Lake.Grant()], new SandboxLimits(), validated);
        var (fresh, freshJson) = await RunJsonAsync(first, sql, TimeSpan.FromHours(1));
        Assert.True(validated.Find(first.Scope, sql) is { CarriedKnown: true, Carried: not null });

        using var second = SqlSandbox.Open([Lake.Grant()], new SandboxLimits(), validated);
        var (remembered, rememberedJson) = await RunJsonAsync(second, sql, TimeSpan.FromHours(1));
        Assert.Equal(freshJson.GetRawText(), rememberedJson.GetRawText());
        Assert.Equal(fresh.Delivered!.OrderBy(d => (d.Device, d.Epoch)), remembered.Delivered!.OrderBy(d => (d.Device, d.Epoch)));
    }

    [Fact]
    public async Task Query_ColumnTypeResultsCannotCarry_IsRefusedBeforeWriting()
    {
        using var sandbox = SqlSandbox.Open([Lake.Grant()], new SandboxLimits());
        using var output = new MemoryStream();
        var refused = await Assert.ThrowsAsync<SandboxRefusedException>(() => sandbox.RunAsync("SELECT INTERVAL 1 day AS span", ResultFormat.Csv, output, 10, 1, CancellationToken.None));
        Assert.Equal(SandboxReason.UnsupportedType, refused.Reason);
        Assert.Equal(0, output.Length);
    }

    [Fact]
    public void Open_InvalidGrantDescription_SaysWhatIsWrong()
    {
        var bad = new GrantedTable("Bad Name; DROP", TableShape.VehicleSignals, ["relative.parquet", "/x/it's.parquet"],
            new RowRestriction(Nov23, Nov23, new BoundingBox(10, 0, 5, 0), ["0xABC"]));
        var error = Assert.Throws<ArgumentException>(() => SqlSandbox.Open([bad], new SandboxLimits()));
        foreach (var part in new[] { "Table name", "relative.parquet", "it's", "Until must be after From", "South", "0xABC" })
            Assert.Contains(part, error.Message);
    }

    private static async Task<(QueryResult Result, JsonElement Json)> RunJsonAsync(SqlSandbox sandbox, string sql, TimeSpan? epochLength = null)
    {
        using var output = new MemoryStream();
        var result = await sandbox.RunAsync(sql, ResultFormat.Json, output, 100_000, 1, CancellationToken.None, epochLength);
        return (result, JsonDocument.Parse(output.ToArray()).RootElement.Clone());
    }
}
