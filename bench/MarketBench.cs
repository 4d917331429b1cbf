using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;
using DuckDB.NET.Data;
using Marten;
using Pipeline.Cli.Hosting;
using Pipeline.Marketplace;
using Pipeline.Marketplace.Accounts;
using Pipeline.Projections.Lake;
using Spectre.Console;

namespace Pipeline.Bench;

/// <summary>
/// Typical buyer queries through the marketplace API (a real host, a buyer's key, a grant over the whole lake) against
/// the same SQL run directly in DuckDB over the same files with the sandbox's thread and memory limits; and an export
/// through the API against DuckDB's own COPY of the same rows with the same options.
/// </summary>
public static class MarketBench
{
    private const int Warmup = 3;
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(20);

    public static async Task RunAsync(TimeSpan duration)
    {
        var loadAtStart = LoadAverage();
        var readings = (int)Math.Clamp(duration.TotalSeconds * 100_000, 200_000, 2_000_000);
        var runs = (int)Math.Clamp(duration.TotalSeconds * 10, 20, 200);
        await using var scratch = await Scratch.StartAsync();
        var (lakeDirectory, files, lakeOptions, _) = await LakeBench.BuildLakeAsync(scratch, readings);

        var operatorKeyFile = Path.Combine(scratch.Folder, "marketplace", "operator-key.sha256");
        var operatorKey = new OperatorKey(operatorKeyFile).CreateIfMissing()!;
        var apiPort = Scratch.FreePort();
        var configuration = scratch.Configuration(
            new("Data:Directory", scratch.Folder),
            new("Lake:Directory", lakeDirectory),
            new("Endpoints:ApiPort", $"{apiPort}"),
            new("Endpoints:IngestPort", $"{Scratch.FreePort()}"),
            new("Endpoints:MqttPort", "0"),
            new("Marketplace:OperatorKeyFile", operatorKeyFile),
            new("Marketplace:RequestsPerSecond", "100000"),
            new("Marketplace:RequestBurst", "100000"),
            // The API needs a chain to name; nothing listens there, since the bench pays with credits (the payment
            // follower retries every few seconds, off the measured path).
            new("Chain:RpcUrl", $"http://127.0.0.1:{Scratch.FreePort()}"));
        await using var host = PipelineHost.Build(configuration, Roles.Api);
        await host.StartAsync();
        using var api = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{apiPort}"), Timeout = TimeSpan.FromMinutes(10) };

        var created = await PostAsync(api, operatorKey, "/v1/buyers", new { name = "bench buyer", credits = 1_000_000_000L });
        var buyerKey = created.GetProperty("apiKey").GetString()!;
        var buyerId = created.GetProperty("buyer").GetProperty("id").GetString()!;
        var grant = (await PostAsync(api, buyerKey, "/v1/grants", new
        {
            dataset = LakeDatasets.VehicleSignals,
            from = DateTimeOffset.UtcNow.AddDays(-30),
            rowQuota = 100_000_000L,
            expiresAt = DateTimeOffset.UtcNow.AddDays(1),
        })).GetProperty("id").GetString()!;

        var store = host.Services.GetRequiredService<IDocumentStore>();
        var postgres = scratch.Servers.PostgresConnectionString!;
        await AnsiConsole.Status().StartAsync("Giving the buyer a long-time buyer's account…", _ => AgeAccountAsync(api, store, buyerKey, buyerId));

        var limits = new MarketplaceOptions();
        using var duck = LakeCatalog.Open(lakeDirectory, files, lakeOptions.EpochLength);
        LakeCatalog.Execute(duck, $"SET threads = {limits.QueryThreads}");
        LakeCatalog.Execute(duck, $"SET memory_limit = '{limits.QueryMemoryLimitMegabytes}MB'");

        var oneDevice = Scalar(duck, "SELECT min(device) FROM vehicle_signals");
        var queries = new (string Name, string Sql)[]
        {
            ("Filtered scan (one device, fast rows)", $"SELECT device_time, speed_kmh, latitude, longitude FROM vehicle_signals WHERE device = '{oneDevice}' AND speed_kmh > 100"),
            ("Daily aggregate per device", "SELECT device, date, count(*) AS readings, avg(speed_kmh) AS speed_mean, max(speed_kmh) AS speed_max, max(odometer_km) - min(odometer_km) AS distance_km FROM vehicle_signals GROUP BY device, date"),
            ("Top 10 devices by distance", "SELECT device, max(odometer_km) - min(odometer_km) AS distance_km FROM vehicle_signals GROUP BY device ORDER BY distance_km DESC LIMIT 10"),
        };

        using var phases = new PhaseListener(MarketMetrics.QueryPhaseInstrument);
        var charges = new List<(string Query, ChargeWrites Writes, int Charges)>();
        var breakdown = new Table().AddColumn("Query (API, medians in ms)");
        foreach (var phase in PhaseListener.QueryPhases) breakdown.AddColumn(new TableColumn(phase).RightAligned());
        breakdown.AddColumn(new TableColumn("rest (HTTP, auth)").RightAligned());
        var table = new Table().AddColumn("Measure").AddColumn(new TableColumn("API").RightAligned())
            .AddColumn(new TableColumn("DuckDB direct").RightAligned()).AddColumn(new TableColumn("API ÷ DuckDB").RightAligned());
        await AnsiConsole.Progress().StartAsync(async progress =>
        {
            foreach (var (name, sql) in queries)
            {
                var task = progress.AddTask(name, maxValue: 2 * (runs + Warmup));
                phases.Clear();
                var writesBefore = await ChargeWritesAsync(store, postgres);
                var overApi = await LatenciesAsync(runs, task, () => QueryAsync(api, buyerKey, grant, sql));
                charges.Add((name, await ChargeWritesAsync(store, postgres, writesBefore, runs + Warmup) - writesBefore, runs + Warmup));
                var medians = PhaseListener.QueryPhases.Select(phases.Median).ToList();
                breakdown.AddRow([name, .. medians.Select(m => $"{m:N1}"), $"{overApi.P50.TotalMilliseconds - medians.Sum():N1}"]);
                var direct = await LatenciesAsync(runs, task, () => Task.FromResult(ReadAll(duck, sql)));
                if (overApi.Rows != direct.Rows) throw new InvalidOperationException($"{name}: the API returned {overApi.Rows} rows, DuckDB {direct.Rows}.");
                table.AddRow($"{name}, {direct.Rows:N0} rows: p50", Ms(overApi.P50), Ms(direct.P50), $"{overApi.P50 / direct.P50:F2}×");
                table.AddRow($"{name}: p99 of {runs}", Ms(overApi.P99), Ms(direct.P99), $"{overApi.P99 / direct.P99:F2}×");
            }
        });

        using var exportPhases = new PhaseListener(MarketMetrics.ExportPhaseInstrument);
        var (exportBytes, exportTime, partitions) = await AnsiConsole.Status().StartAsync("Exporting the whole grant through the API…", _ => ExportAsync(api, buyerKey, grant));
        var exportBreakdown = new Table().AddColumn("Export (API, ms)");
        foreach (var phase in PhaseListener.ExportPhases) exportBreakdown.AddColumn(new TableColumn(phase).RightAligned());
        exportBreakdown.AddColumn(new TableColumn("rest (polling, download)").RightAligned());
        var exportMedians = PhaseListener.ExportPhases.Select(exportPhases.Median).ToList();
        exportBreakdown.AddRow(["whole grant", .. exportMedians.Select(m => $"{m:N0}"), $"{exportTime.TotalMilliseconds - exportMedians.Sum():N0}"]);
        var copyFolder = Path.Combine(scratch.Folder, "duckdb-copy");
        var clock = Stopwatch.StartNew();
        LakeCatalog.Execute(duck, $"COPY (SELECT * FROM vehicle_signals ORDER BY event_seq) TO '{copyFolder}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY ({partitions}))");
        var copyTime = clock.Elapsed;
        var copyBytes = Directory.EnumerateFiles(copyFolder, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        var (apiRate, copyRate) = (exportBytes / 1e6 / exportTime.TotalSeconds, copyBytes / 1e6 / copyTime.TotalSeconds);
        table.AddRow($"Export of {readings:N0} rows (zstd, by {partitions}): MB/s", $"{apiRate:N1} ({exportBytes / 1e6:N1} MB in {exportTime.TotalSeconds:N1} s)",
            $"{copyRate:N1} ({copyBytes / 1e6:N1} MB in {copyTime.TotalSeconds:N1} s)", $"{apiRate / copyRate:F2}×");
        AnsiConsole.Write(table);
        AnsiConsole.Write(breakdown);
        AnsiConsole.Write(exportBreakdown);
        var writes = new Table().AddColumn("Charges (one per API query)").AddColumn(new TableColumn("WAL bytes per charge").RightAligned())
            .AddColumn(new TableColumn("account updates").RightAligned()).AddColumn(new TableColumn("of them HOT").RightAligned())
            .AddColumn(new TableColumn("account document bytes").RightAligned()).AddColumn(new TableColumn("statements per query").RightAligned());
        foreach (var (query, delta, count) in charges)
            writes.AddRow(query, $"{delta.WalBytes / count:N0}", $"{delta.Updates:N0}", $"{delta.HotUpdates:N0} ({100.0 * delta.HotUpdates / Math.Max(1, delta.Updates):N0} %)", $"{delta.DocumentBytes:N0}",
                $"{(double)delta.Statements / count:N1}");
        AnsiConsole.Write(writes);
        AnsiConsole.MarkupLineInterpolated($"Lake: {readings:N0} readings of 200 vehicles in {files.Count} files; DuckDB direct with the sandbox's limits ({limits.QueryThreads} thread, {limits.QueryMemoryLimitMegabytes} MB) reads every value of every row (boxed, as ADO.NET gives them); the API's results are JSON, read whole by the client; export = start → job done → files downloaded.");
        AnsiConsole.MarkupLineInterpolated($"Load average (1 min) at the start {loadAtStart}, at the end {LoadAverage()}, on {Environment.ProcessorCount} cores shared with other work.");
        await host.StopAsync();
    }

    public const int AgedGrants = 20, AgedKeys = 5, AgedPayments = 1000;

    /// <summary>
    /// Gives the buyer what a buyer of some years has: <see cref="AgedGrants"/> grants, <see cref="AgedKeys"/> keys and
    /// <see cref="AgedPayments"/> payments counted (appended as the payment follower appends them), so that a charge's
    /// write is measured on an account of that size rather than a new one.
    /// </summary>
    private static async Task AgeAccountAsync(HttpClient api, IDocumentStore store, string buyerKey, string buyerId)
    {
        for (var i = 1; i < AgedGrants; i++)
            await PostAsync(api, buyerKey, "/v1/grants", new { dataset = LakeDatasets.VehicleSignals, from = DateTimeOffset.UtcNow.AddDays(-i), rowQuota = 1000L + i, expiresAt = DateTimeOffset.UtcNow.AddDays(30) });
        for (var i = 1; i < AgedKeys; i++) await PostAsync(api, buyerKey, "/v1/account/keys", new { label = $"key {i}" });
        for (var first = 0; first < AgedPayments; first += 100)
        {
            await using var session = store.LightweightSession();
            session.Events.Append(buyerId, Enumerable.Range(first, 100).Select(i => (object)new Pipeline.Core.Events.PaymentReceived(
                buyerId, 1, "0x" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(BitConverter.GetBytes(i))), i % 4, "0x" + new string('b', 40),
                "1000000000000000000", 100, 1000 + i)).ToArray());
            await session.SaveChangesAsync();
        }
    }

    /// <summary>
    /// WAL written so far (the scratch cluster serves only this bench), the account table's updates and HOT updates, the
    /// account document's size, and the statements PostgreSQL ran (pg_stat_statements, BEGIN and COMMIT included; not this
    /// bench's own reads of the statistics).
    /// </summary>
    private sealed record ChargeWrites(long WalBytes, long Updates, long HotUpdates, long DocumentBytes, long Statements)
    {
        public static ChargeWrites operator -(ChargeWrites after, ChargeWrites before) =>
            new(after.WalBytes - before.WalBytes, after.Updates - before.Updates, after.HotUpdates - before.HotUpdates, after.DocumentBytes, after.Statements - before.Statements);
    }

    /// <summary>
    /// The writes so far; after <paramref name="charges"/> charges since <paramref name="since"/>, waits until the table
    /// statistics show them (backends report their counts to the statistics up to a few seconds late).
    /// </summary>
    private static async Task<ChargeWrites> ChargeWritesAsync(IDocumentStore store, string postgres, ChargeWrites? since = null, int charges = 0)
    {
        await using var connection = (Npgsql.NpgsqlConnection)store.Storage.Database.CreateConnection();
        // The scratch cluster keeps pg_stat_statements in its maintenance database, counting every database's statements.
        await using var maintenance = new Npgsql.NpgsqlConnection(new Npgsql.NpgsqlConnectionStringBuilder(postgres) { Database = "postgres" }.ConnectionString);
        await connection.OpenAsync();
        var wal = await ScalarAsync<long>(connection, "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn");
        await maintenance.OpenAsync();
        var statements = await ScalarAsync<long>(maintenance,
            $"SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '{connection.Database}') AND query NOT LIKE '%pg_stat%' AND query NOT LIKE '%pg_current_wal_lsn%'");
        await using var stats = new Npgsql.NpgsqlCommand(
            $"SELECT n_tup_upd, n_tup_hot_upd, (SELECT coalesce(max(pg_column_size(data)), 0) FROM {store.Options.DatabaseSchemaName}.mt_doc_buyeraccount) FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'mt_doc_buyeraccount'", connection);
        stats.Parameters.Add(new Npgsql.NpgsqlParameter { Value = store.Options.DatabaseSchemaName });
        var waited = Stopwatch.StartNew();
        while (true)
        {
            await using var reader = await stats.ExecuteReaderAsync();
            await reader.ReadAsync();
            var writes = new ChargeWrites(wal, reader.GetInt64(0), reader.GetInt64(1), reader.GetInt32(2), statements);
            if (since is null || writes.Updates - since.Updates >= charges || waited.Elapsed > TimeSpan.FromSeconds(30)) return writes;
            await reader.DisposeAsync();
            await Task.Delay(PollInterval * 10);
        }
    }

    private static async Task<T> ScalarAsync<T>(Npgsql.NpgsqlConnection connection, string sql)
    {
        await using var command = new Npgsql.NpgsqlCommand(sql, connection);
        return (T)Convert.ChangeType((await command.ExecuteScalarAsync())!, typeof(T), CultureInfo.InvariantCulture);
    }

    /// <summary>The marketplace's query or export phases (<see cref="MarketMetrics"/>) as the host records them, per phase.</summary>
    private sealed class PhaseListener : IDisposable
    {
        public static readonly string[] QueryPhases = ["account", "lake", "sandbox", "validate", "execute", "attribute", "charge"];
        public static readonly string[] ExportPhases = ["plan", "queue", "write", "describe", "sign", "charge"];
        private readonly MeterListener _listener = new();
        private readonly ConcurrentDictionary<string, ConcurrentBag<double>> _seconds = new();

        public PhaseListener(string instrumentName)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Name == instrumentName && instrument.Meter.Name == MarketMetrics.MeterName) listener.EnableMeasurementEvents(instrument);
            };
            _listener.SetMeasurementEventCallback<double>((_, seconds, tags, _) =>
            {
                foreach (var tag in tags)
                    if (tag is { Key: "phase", Value: string phase }) _seconds.GetOrAdd(phase, _ => []).Add(seconds);
            });
            _listener.Start();
        }

        public void Clear() => _seconds.Clear();

        /// <summary>The median of a phase in ms (0 when the phase did not run).</summary>
        public double Median(string phase)
        {
            if (!_seconds.TryGetValue(phase, out var values) || values.IsEmpty) return 0;
            var sorted = values.Order().ToList();
            return sorted[sorted.Count / 2] * 1000;
        }

        public void Dispose() => _listener.Dispose();
    }

    private static string LoadAverage() => File.ReadAllText("/proc/loadavg").Split(' ')[0];

    private static string Ms(TimeSpan time) => $"{time.TotalMilliseconds:N1} ms";

    private static async Task<(TimeSpan P50, TimeSpan P99, long Rows)> LatenciesAsync(int runs, ProgressTask task, Func<Task<long>> run)
    {
        var times = new List<TimeSpan>(runs);
        long rows = 0;
        for (var i = 0; i < runs + Warmup; i++)
        {
            var clock = Stopwatch.StartNew();
            rows = await run();
            if (i >= Warmup) times.Add(clock.Elapsed);
            task.Increment(1);
        }
        times.Sort();
        return (times[(int)Math.Ceiling(0.5 * runs) - 1], times[(int)Math.Ceiling(0.99 * runs) - 1], rows);
    }

    private static async Task<long> QueryAsync(HttpClient api, string key, string grant, string sql)
    {
        using var response = await SendAsync(api, key, HttpMethod.Post, "/v1/query", new { grant, sql });
        await using var body = await response.Content.ReadAsStreamAsync();
        await body.CopyToAsync(Stream.Null);
        return long.Parse(response.Headers.GetValues("X-Rows").Single(), CultureInfo.InvariantCulture);
    }

    private static long ReadAll(DuckDBConnection duck, string sql)
    {
        using var command = duck.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        long rows = 0;
        var values = new object[reader.FieldCount];
        while (reader.Read())
        {
            reader.GetValues(values);
            rows++;
        }
        return rows;
    }

    private static string Scalar(DuckDBConnection duck, string sql)
    {
        using var command = duck.CreateCommand();
        command.CommandText = sql;
        return Convert.ToString(command.ExecuteScalar(), CultureInfo.InvariantCulture)!;
    }

    /// <summary>Starts an export of the whole grant, polls it until done and downloads every file: the bytes and the time it all took.</summary>
    private static async Task<(long Bytes, TimeSpan Time, string Partitions)> ExportAsync(HttpClient api, string key, string grant)
    {
        var clock = Stopwatch.StartNew();
        var id = (await PostAsync(api, key, "/v1/exports", new { grant })).GetProperty("id").GetString()!;
        JsonElement job;
        while (true)
        {
            using var polled = await SendAsync(api, key, HttpMethod.Get, $"/v1/exports/{id}");
            job = await polled.Content.ReadFromJsonAsync<JsonElement>();
            if (job.GetProperty("status").GetString() is not ("queued" or "running")) break;
            // Polled as a client would: often enough to add little to the time, not so often as to take the export's CPU.
            await Task.Delay(PollInterval);
        }
        if (job.GetProperty("status").GetString() != "done") throw new InvalidOperationException($"The export failed: {job}");

        using var manifestResponse = await SendAsync(api, key, HttpMethod.Get, $"/v1/exports/{id}/manifest");
        var manifest = await manifestResponse.Content.ReadFromJsonAsync<JsonElement>();
        long bytes = 0;
        foreach (var file in manifest.GetProperty("files").EnumerateArray())
        {
            using var download = await SendAsync(api, key, HttpMethod.Get, $"/v1/exports/{id}/files/{file.GetProperty("path").GetString()}");
            bytes += (await download.Content.ReadAsByteArrayAsync()).Length;
        }
        var partitions = string.Join(", ", manifest.GetProperty("partitionedBy").EnumerateArray().Select(p => p.GetString()));
        return (bytes, clock.Elapsed, partitions);
    }

    private static async Task<JsonElement> PostAsync(HttpClient api, string key, string path, object body)
    {
        using var response = await SendAsync(api, key, HttpMethod.Post, path, body);
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    private static async Task<HttpResponseMessage> SendAsync(HttpClient api, string key, HttpMethod method, string path, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        if (body is not null) request.Content = JsonContent.Create(body);
        var response = await api.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        if (response.IsSuccessStatusCode) return response;
        var problem = await response.Content.ReadAsStringAsync();
        response.Dispose();
        throw new InvalidOperationException($"{method} {path}: {(int)response.StatusCode} {problem}");
    }
}
