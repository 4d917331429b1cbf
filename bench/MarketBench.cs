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

    public static async Task RunAsync(TimeSpan duration, CancellationToken stop)
    {
        var loadAtStart = LoadAverage();
        var readings = (int)Math.Clamp(duration.TotalSeconds * 100_000, 200_000, 2_000_000);
        var runs = (int)Math.Clamp(duration.TotalSeconds * 10, 20, 200);
        await using var scratch = await Scratch.StartAsync();
        var (lakeDirectory, files, lakeOptions, _) = await LakeBench.BuildLakeAsync(scratch, readings, stop);

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
        // A stop signal ends the request in flight (an export's status waits up to a minute); the loops check it between requests.
        using var cancelRequests = stop.Register(api.CancelPendingRequests);

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
                var writesBefore = await ChargeWritesAsync(store, postgres, stop);
                var (overApi, direct) = await LatenciesAsync(runs, task, () => QueryAsync(api, buyerKey, grant, sql), () => Task.FromResult(ReadAll(duck, sql)), stop);
                charges.Add((name, await ChargeWritesAsync(store, postgres, stop, writesBefore, runs + Warmup) - writesBefore, runs + Warmup));
                var medians = PhaseListener.QueryPhases.Select(phases.Median).ToList();
                breakdown.AddRow([name, .. medians.Select(m => $"{m:N1}"), $"{overApi.P50.TotalMilliseconds - medians.Sum():N1}"]);
                if (overApi.Rows != direct.Rows) throw new InvalidOperationException($"{name}: the API returned {overApi.Rows} rows, DuckDB {direct.Rows}.");
                table.AddRow($"{name}, {direct.Rows:N0} rows: p50", Ms(overApi.P50), Ms(direct.P50), $"{overApi.P50 / direct.P50:F2}×");
                table.AddRow($"{name}: p99 of {runs}", Ms(overApi.P99), Ms(direct.P99), $"{overApi.P99 / direct.P99:F2}×");
            }
        });

        using var exportPhases = new PhaseListener(MarketMetrics.ExportPhaseInstrument);
        var exports = await AnsiConsole.Status().StartAsync("Exporting the whole grant through the API and with DuckDB's COPY…",
            _ => CompareExportsAsync(api, buyerKey, grant, duck, scratch.Folder, exportPhases, stop));
        // Each row: the median of that column over the rounds (so the row need not add up).
        var exportBreakdown = new Table().AddColumn($"Export (API, medians of {ExportRounds}, ms)");
        foreach (var phase in PhaseListener.ExportPhases) exportBreakdown.AddColumn(new TableColumn(phase).RightAligned());
        exportBreakdown.AddColumn(new TableColumn("rest (HTTP)").RightAligned()).AddColumn(new TableColumn("download").RightAligned())
            .AddColumn(new TableColumn("quality (beside write)").RightAligned());
        var exportMedians = Enumerable.Range(0, PhaseListener.ExportPhases.Length + 1).Select(i => exports.Select(e => e.Phases[i]).Order().ElementAt(exports.Count / 2));
        exportBreakdown.AddRow(["whole grant", .. exportMedians.SkipLast(1).Select(m => $"{m:N0}"), $"{Median(exports.Select(e => e.Done - e.Job)).TotalMilliseconds:N0}",
            $"{Median(exports.Select(e => e.Download)).TotalMilliseconds:N0}", $"{exportMedians.Last():N0}"]);
        var (exportBytes, copyBytes) = (exports[0].Bytes, exports[0].CopyBytes);
        var (done, job, copy) = (Median(exports.Select(e => e.Done)), Median(exports.Select(e => e.Job)), Median(exports.Select(e => e.Copy)));
        string Rate(long bytes, TimeSpan time) => $"{bytes / 1e6 / time.TotalSeconds:N2} ({time.TotalSeconds:N2} s)";
        double Ratio(TimeSpan time) => exportBytes / time.TotalSeconds / (copyBytes / copy.TotalSeconds);
        table.AddRow($"Export of {readings:N0} rows (zstd, by {exports[0].Partitions}, {exportBytes / 1e6:N1} MB), MB/s, median of {ExportRounds}: request → done",
            Rate(exportBytes, done), Rate(copyBytes, copy), $"{Ratio(done):F2}×");
        table.AddRow("Export: the job's own time (plan → charged)", Rate(exportBytes, job), Rate(copyBytes, copy), $"{Ratio(job):F2}×");
        var (cpu, copyCpu) = (Median(exports.Select(e => e.Cpu)), Median(exports.Select(e => e.CopyCpu)));
        table.AddRow("Export: CPU of this process (API and bench) per export / per COPY", $"{cpu.TotalSeconds:N2} s", $"{copyCpu.TotalSeconds:N2} s", $"{cpu / copyCpu:F2}×");
        table.AddRow("Export rounds, done / COPY (s)", string.Join(" ", exports.Select(e => $"{e.Done.TotalSeconds:N2}")), string.Join(" ", exports.Select(e => $"{e.Copy.TotalSeconds:N2}")), "");
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
        AnsiConsole.MarkupLineInterpolated($"Lake: {readings:N0} readings of 200 vehicles in {files.Count} files; DuckDB direct with the sandbox's limits ({limits.QueryThreads} thread, {limits.QueryMemoryLimitMegabytes} MB) reads every value of every row (boxed, as ADO.NET gives them), run for run in turns with the API's query; the API's results are JSON, read whole by the client. Export: {ExportRounds} rounds, in turn the API's first and DuckDB's COPY first, both on one thread, zstd, the same rows in event order; the API's time runs from the request to the answer of a status request that waits for the job (?wait=60) saying done, and the job's own time is the sum of its phases; the files' download is not in either. CPU: of this process (the API host and the bench, not PostgreSQL), a median over the rounds.");
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
    private static async Task<ChargeWrites> ChargeWritesAsync(IDocumentStore store, string postgres, CancellationToken stop, ChargeWrites? since = null, int charges = 0)
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
            await Task.Delay(200, stop);
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
        public static readonly string[] ExportPhases = ["plan", "queue", "open", "write", "describe", "sign", "attribute", "charge"];
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

    private sealed record Latencies(TimeSpan P50, TimeSpan P99, long Rows);

    /// <summary>
    /// The two ways of running a query, run for run in turns (each goes first every other time), so that both see the
    /// same load and the same state of the CPU's caches: the API's run leaves them cold for whatever runs next, and a
    /// block of direct runs after a block of API runs measured DuckDB warm and at another moment's load.
    /// </summary>
    private static async Task<(Latencies First, Latencies Second)> LatenciesAsync(int runs, ProgressTask task, Func<Task<long>> first, Func<Task<long>> second, CancellationToken stop)
    {
        var (firstTimes, secondTimes) = (new List<TimeSpan>(runs), new List<TimeSpan>(runs));
        var (firstRows, secondRows) = (0L, 0L);
        for (var i = 0; i < runs + Warmup; i++)
        {
            stop.ThrowIfCancellationRequested();
            if (i % 2 == 1) secondRows = await TimeAsync(second, secondTimes, i);
            firstRows = await TimeAsync(first, firstTimes, i);
            if (i % 2 == 0) secondRows = await TimeAsync(second, secondTimes, i);
        }
        return (Of(firstTimes, firstRows), Of(secondTimes, secondRows));

        async Task<long> TimeAsync(Func<Task<long>> run, List<TimeSpan> times, int i)
        {
            var clock = Stopwatch.StartNew();
            var rows = await run();
            if (i >= Warmup) times.Add(clock.Elapsed);
            task.Increment(1);
            return rows;
        }

        Latencies Of(List<TimeSpan> times, long rows)
        {
            times.Sort();
            return new(times[(int)Math.Ceiling(0.5 * runs) - 1], times[(int)Math.Ceiling(0.99 * runs) - 1], rows);
        }
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

    private const int ExportRounds = 5;

    /// <summary>One round: the API's export (until done, the job's own phases, the download) and DuckDB's COPY of the same rows.</summary>
    private sealed record ExportRound(TimeSpan Done, TimeSpan Job, TimeSpan Download, long Bytes, string Partitions, TimeSpan Copy, long CopyBytes, double[] Phases, TimeSpan Cpu, TimeSpan CopyCpu);

    /// <summary>
    /// Exports the whole grant through the API and copies the same rows with DuckDB's COPY, <see cref="ExportRounds"/>
    /// times, taking turns at going first (the first of a pair warms the page cache for the second).
    /// </summary>
    private static async Task<List<ExportRound>> CompareExportsAsync(HttpClient api, string key, string grant, DuckDBConnection duck, string folder, PhaseListener phases, CancellationToken stop)
    {
        var rows = long.Parse(Scalar(duck, "SELECT count(*) FROM vehicle_signals"), CultureInfo.InvariantCulture);
        var rounds = new List<ExportRound>();
        for (var round = 0; round < ExportRounds; round++)
        {
            stop.ThrowIfCancellationRequested();
            (TimeSpan Time, long Bytes, TimeSpan Cpu) copied = default;
            var copyFolder = Path.Combine(folder, $"duckdb-copy-{round}");
            // The bench's grant is not sharded, so the API partitions by date alone, and so does the COPY.
            void Copy() => copied = CopyWithDuckDb(duck, copyFolder, "date");
            if (round % 2 == 1) Copy();
            phases.Clear();
            var cpu = ProcessCpu();
            var exported = await ExportAsync(api, key, grant);
            var exportCpu = ProcessCpu() - cpu;
            if (exported.Rows != rows) throw new InvalidOperationException($"The export wrote {exported.Rows} rows, DuckDB's view has {rows}.");
            if (exported.Partitions != "date") throw new InvalidOperationException($"The export is partitioned by {exported.Partitions}, the COPY by date.");
            // The job is done (its commit) a moment before its charge phase is recorded.
            for (var waited = Stopwatch.StartNew(); phases.Median("charge") == 0 && waited.Elapsed < TimeSpan.FromSeconds(5);) await Task.Delay(1, stop);
            // Each phase in ms, then the quality report's time beside them.
            double[] phaseTimes = [.. PhaseListener.ExportPhases.Select(phases.Median), phases.Median("quality")];
            var job = TimeSpan.FromMilliseconds(phaseTimes.SkipLast(1).Sum());
            if (round % 2 == 0) Copy();
            rounds.Add(new ExportRound(exported.Done, job, exported.Download, exported.Bytes, exported.Partitions, copied.Time, copied.Bytes, phaseTimes, exportCpu, copied.Cpu));
            Directory.Delete(copyFolder, recursive: true);
        }
        return rounds;
    }

    private static (TimeSpan Time, long Bytes, TimeSpan Cpu) CopyWithDuckDb(DuckDBConnection duck, string folder, string partitions)
    {
        var cpu = ProcessCpu();
        var clock = Stopwatch.StartNew();
        LakeCatalog.Execute(duck, $"COPY (SELECT * FROM vehicle_signals ORDER BY event_seq) TO '{folder}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY ({partitions}))");
        var time = clock.Elapsed;
        return (time, Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length), ProcessCpu() - cpu);
    }

    // The CPU this process (the API host and the bench, not PostgreSQL) used so far: unlike wall time, it hardly moves with the machine's load.
    private static TimeSpan ProcessCpu()
    {
        using var process = Process.GetCurrentProcess();
        return process.TotalProcessorTime;
    }

    private static TimeSpan Median(IEnumerable<TimeSpan> times)
    {
        var sorted = times.Order().ToList();
        return sorted[sorted.Count / 2];
    }

    /// <summary>Starts an export of the whole grant and asks for its status, waiting until done (the time a buyer waits), then downloads every file (timed apart).</summary>
    private static async Task<(TimeSpan Done, TimeSpan Download, long Bytes, long Rows, string Partitions)> ExportAsync(HttpClient api, string key, string grant)
    {
        var clock = Stopwatch.StartNew();
        var id = (await PostAsync(api, key, "/v1/exports", new { grant })).GetProperty("id").GetString()!;
        JsonElement job;
        while (true)
        {
            // One request that the API answers when the job ends (a loop only in case the wait runs out).
            using var answer = await SendAsync(api, key, HttpMethod.Get, $"/v1/exports/{id}?wait=60");
            job = await answer.Content.ReadFromJsonAsync<JsonElement>();
            if (job.GetProperty("status").GetString() is not ("queued" or "running")) break;
        }
        var done = clock.Elapsed;
        if (job.GetProperty("status").GetString() != "done") throw new InvalidOperationException($"The export failed: {job}");

        clock.Restart();
        using var manifestResponse = await SendAsync(api, key, HttpMethod.Get, $"/v1/exports/{id}/manifest");
        var manifest = await manifestResponse.Content.ReadFromJsonAsync<JsonElement>();
        long bytes = 0;
        foreach (var file in manifest.GetProperty("files").EnumerateArray())
        {
            using var download = await SendAsync(api, key, HttpMethod.Get, $"/v1/exports/{id}/files/{file.GetProperty("path").GetString()}");
            bytes += (await download.Content.ReadAsByteArrayAsync()).Length;
        }
        var partitions = string.Join(", ", manifest.GetProperty("partitionedBy").EnumerateArray().Select(p => p.GetString()));
        return (done, clock.Elapsed, bytes, manifest.GetProperty("rows").GetInt64(), partitions);
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
