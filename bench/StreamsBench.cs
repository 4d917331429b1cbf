using System.Diagnostics;
using System.Runtime;
using System.Text;
using System.Text.Json;
using Confluent.Kafka;
using Npgsql;
using NpgsqlTypes;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Core.Events;
using Pipeline.Core.Kafka;
using Pipeline.Core.Registry;
using Pipeline.Infra.Kafka;
using Pipeline.Infra.Postgres;
using Pipeline.Streams.Processing;
using Pipeline.Registry;
using Spectre.Console;
using V = Pipeline.Core.Signals.SignalCatalog.Vehicle;

namespace Pipeline.Bench;

/// <summary>
/// Readings through the processors (consume, recover, check, dedupe, append to Marten, commit) against two baselines
/// measured in the same run: raw signature recovery of the same readings on every core, and a raw binary COPY of the
/// same event rows into PostgreSQL.
/// </summary>
public static class StreamsBench
{
    private const int Devices = 200;

    /// <summary>
    /// Readings processed before the clock starts: 32 batches of 2,000, because code that runs once per batch (the store's
    /// statements, Npgsql's and Marten's paths) reaches tier 1 after 30 calls — without tiered PGO, as `depin` ships (with
    /// it, 30 more through the instrumented tier, and hundreds of methods went to tier 1 inside the window). With 3
    /// batches the JIT still compiled in the window (25–45 µs per reading): a start-up cost, not throughput.
    /// With the window, about 150,000 readings fit in the embedded broker (<see cref="RequireAllKept"/>).
    /// </summary>
    private const int WarmUp = 64_000;

    public static async Task RunAsync(TimeSpan duration, CancellationToken stop)
    {
        // Up to 75,000 readings in the window (`bench streams 25`, ~3.5 s): windows of 30,000 swung by ±4 µs per reading
        // with the one collection that fell in them or not; windows of 75,000 by ±1.
        var readingsCount = (int)Math.Clamp(duration.TotalSeconds * 3_000, 6_000, 75_000) + WarmUp;
        await using var scratch = await Scratch.StartAsync();
        var stack = scratch;

        var keys = Enumerable.Range(0, Devices).Select(i => EthKey.FromSeed(Encoding.UTF8.GetBytes($"bench-streams-{i}"))).ToArray();
        var owner = EthKey.FromSeed("bench-owner"u8);
        var registry = stack.Create<DeviceRegistry>();
        foreach (var key in keys)
        {
            var message = new RegistrationMessage(key.Address, owner.Address, DeviceKind.Vehicle, new Dictionary<string, string> { ["make"] = "Bench", ["model"] = "B", ["year"] = "2020", ["firmware"] = "1" }, DateTimeOffset.UtcNow, registry.Domain);
            await registry.RegisterAsync(message.ToJson(), message.Sign(owner), message.Sign(key), stop);
        }

        var readings = AnsiConsole.Status().Start($"Signing {readingsCount:N0} readings…", _ => Sign(keys, readingsCount, stop));
        Produce(stack, readings);
        RequireAllKept(stack, readings.Count);

        // The machine is shared: recovery is measured before and after the processors, and the processors are set
        // against the mean. CPU time per reading (this process, where the broker also runs, and PostgreSQL's) is the
        // figure that other work on the machine moves least.
        AnsiConsole.MarkupLine("Baseline: raw signature recovery of the same readings on every core…");
        var before = Recover(readings, stop);
        AnsiConsole.MarkupLine("Processors: consuming, validating and appending to PostgreSQL…");
        var (pipeline, cpu) = await ProcessAsync(stack, readings.Count, stop);
        AnsiConsole.MarkupLine("Baseline: raw signature recovery again, then a raw binary COPY of the same event rows…");
        var after = Recover(readings, stop);
        var copy = await CopyAsync(stack, readings);
        var recovery = (before.PerSecond + after.PerSecond) / 2;

        var table = new Table().AddColumn("Path").AddColumn(new TableColumn("Readings/s").RightAligned()).AddColumn(new TableColumn("Processors as share").RightAligned());
        table.AddRow($"Processors: Kafka → checks → Marten ({pipeline.Operations:N0} readings timed after {WarmUp:N0}, {Devices} devices)", $"{pipeline.PerSecond:N0}", "");
        table.AddRow($"Raw signature recovery, {Environment.ProcessorCount} threads (before / after: {before.PerSecond:N0} / {after.PerSecond:N0})", $"{recovery:N0}", $"{pipeline.PerSecond / recovery:P0}");
        table.AddRow("Raw PostgreSQL binary COPY of the same rows", $"{copy.PerSecond:N0}", $"{pipeline.PerSecond / copy.PerSecond:P0}");
        AnsiConsole.Write(table);
        var recoveryCpu = (before.CpuPerReading + after.CpuPerReading) / 2;
        AnsiConsole.MarkupLineInterpolated($"CPU per reading: processors {cpu.Total:F1} µs (this process {cpu.Process:F1}, PostgreSQL {cpu.Postgres:F1}); raw recovery {recoveryCpu:F1} µs: processors at [bold]{recoveryCpu / cpu.Total:P1}[/] of raw recovery's rate on the same cores. Managed memory allocated: {cpu.AllocatedBytes:N0} B per reading.");
        AnsiConsole.MarkupLineInterpolated($"Steady state (without the JIT's background tier-1 compiles in the window, {cpu.Jit:F1} µs per reading, a start-up cost): processors {cpu.SteadyTotal:F1} µs = [bold]{recoveryCpu / cpu.SteadyTotal:P1}[/] of raw recovery. Load average {LoadAverage()}.");
    }

    /// <summary>
    /// Microseconds per reading: this process, PostgreSQL, and of the process the JIT's background compiler thread — what
    /// it still compiles in the window is start-up left over, not throughput.
    /// </summary>
    private readonly record struct CpuPerReading(double Process, double Postgres, double Jit, double AllocatedBytes)
    {
        public double Total => Process + Postgres;
        public double SteadyTotal => Total - Jit;
    }

    private readonly record struct Recovery(double PerSecond, double CpuPerReading);

    private static List<(string Device, byte[] Envelope)> Sign(EthKey[] keys, int count, CancellationToken stop)
    {
        // Every reading's clock in the past (5 s apart per device), so all are accepted: a device time more than
        // 2 min ahead of its receipt is refused as `future`, and dead letters are not what this bench times.
        var start = DateTimeOffset.UtcNow.AddSeconds(-5.0 * (count / keys.Length + 1)).AddMinutes(-30);
        var result = new (string, byte[])[count];
        Parallel.For(0, count, new ParallelOptions { CancellationToken = stop }, i =>
        {
            var key = keys[i % keys.Length];
            var seq = i / keys.Length + 1;
            var payload = ReadingWriter.Payload(key.Address, seq, start.AddSeconds(seq * 5), DeviceKind.Vehicle,
                [new(V.Latitude, 52.37 + seq * 0.0001), new(V.Longitude, 4.89), new(V.Speed, 50 + seq % 20), new(V.Odometer, 10_000 + seq * 0.07)],
                ["410C1AF8", "41057B"]);
            result[i] = (key.Address.ToLowerHex(), ReadingWriter.Sign(key, payload));
        });
        return [.. result];
    }

    private static void Produce(Scratch stack, List<(string Device, byte[] Envelope)> readings)
    {
        using var producer = new ProducerBuilder<string, byte[]>(new KafkaOptions { BootstrapServers = stack.KafkaBootstrapServers }.ProducerConfig("bench")).Build();
        var now = Encoding.ASCII.GetBytes(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture));
        var failed = 0;
        foreach (var (device, envelope) in readings)
            producer.Produce(Topics.Raw, new Message<string, byte[]> { Key = device, Value = envelope, Headers = new Headers { { HeaderNames.ReceivedAt, now } } }, r => { if (r.Error.IsError) Interlocked.Increment(ref failed); });
        if (producer.Flush(TimeSpan.FromMinutes(1)) > 0 || failed > 0) throw new InvalidOperationException($"{failed} bench readings were not delivered to {Topics.Raw}.");
    }

    /// <summary>
    /// The embedded broker keeps only the newest ~5 MiB of each partition (README, Environment notes) and drops older
    /// readings even though nobody read them. The processors then stop at the partitions' ends with every kept reading
    /// recorded, and a bench waiting for all it produced would wait at 0 % CPU: refused here, with what was dropped.
    /// </summary>
    private static void RequireAllKept(Scratch stack, int produced)
    {
        var kafka = new KafkaOptions { BootstrapServers = stack.KafkaBootstrapServers };
        using var admin = new AdminClientBuilder(kafka.AdminConfig()).Build();
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(kafka.ConsumerConfig("bench-watermarks", "bench")).Build();
        var dropped = 0L;
        var busiest = (Partition: 0, Produced: 0L, Kept: 0L);
        foreach (var partition in admin.GetMetadata(Topics.Raw, TimeSpan.FromSeconds(10)).Topics.Single().Partitions)
        {
            var marks = consumer.QueryWatermarkOffsets(new TopicPartition(Topics.Raw, partition.PartitionId), TimeSpan.FromSeconds(10));
            dropped += marks.Low.Value;
            if (marks.High.Value > busiest.Produced) busiest = (partition.PartitionId, marks.High.Value, marks.High.Value - marks.Low.Value);
        }
        if (dropped == 0) return;
        // Readings spread over partitions by device, so the busiest one sets what fits in all.
        var fits = (long)(produced * ((double)busiest.Kept / busiest.Produced));
        throw new InvalidOperationException(
            $"The embedded broker dropped {dropped:N0} of the {produced:N0} readings produced before the processors started: it keeps only the newest ~5 MiB " +
            $"of each partition of {Topics.Raw} (partition {busiest.Partition} kept {busiest.Kept:N0} of its {busiest.Produced:N0}). The processors could never " +
            $"reach {produced:N0}; about {fits:N0} readings in all (warm-up {WarmUp:N0} plus the window) fit.");
    }

    private static async Task<(Throughput Throughput, CpuPerReading Cpu)> ProcessAsync(Scratch stack, int count, CancellationToken stop)
    {
        var configuration = stack.Configuration(new("Endpoints:StatusPort", "0"), new("LOG_FORMAT", "json"), new("Logging:LogLevel:Default", "Warning"));
        await using var app = PipelineHost.Build(configuration, Roles.Streams);
        await app.StartAsync(stop);
        // Stopped however the wait ends, before the scratch servers go: a stop signal, a timeout or the end.
        try
        {
            return await TimeAsync(app, stack, count, stop);
        }
        finally
        {
            await app.StopAsync(CancellationToken.None);
        }
    }

    private static async Task<(Throughput Throughput, CpuPerReading Cpu)> TimeAsync(WebApplication app, Scratch stack, int count, CancellationToken stop)
    {
        var processor = app.Services.GetRequiredService<ReadingProcessor>();
        // Timed after the warm-up, as the baselines exclude their set-up: schema, registry load, group join and JIT are not throughput.
        var deadline = Stopwatch.StartNew();
        while (processor.Processed < WarmUp) await WaitAsync();
        // Said aloud so a profiler attached from outside (dotnet-trace -p) can start with the window.
        AnsiConsole.MarkupLineInterpolated($"Warm-up done; timing {count - processor.Processed:N0} readings (process {Environment.ProcessId})…");
        // PostgreSQL's counters are reset for the window: its statements, WAL and tables' writes are printed per reading after it.
        var share = await PostgresShare.StartAsync(stack.Servers.PostgresConnectionString!, Path.Combine(stack.Folder, "postgres"));
        var walAtStart = await WalPositionAsync(stack);
        // Once before the window, so that the JIT compiles this measuring code outside it.
        _ = ByKind(ThreadCpu(), ThreadCpu());
        // This process's CPU is read last as the window opens and first as it closes, so the bench's own reading of /proc
        // and of the JIT's counters is not charged to the processors.
        var (postgresCpu, jitMethods, jitTime, allocated) = (PostgresCpu(stack), JitInfo.GetCompiledMethodCount(), JitInfo.GetCompilationTime(), GC.GetTotalAllocatedBytes(precise: true));
        var (first, clock, collections, threads, processCpu) = (processor.Processed, Stopwatch.StartNew(), GC.CollectionCount(0), ThreadCpu(), ProcessCpu());
        while (processor.Processed < count) await WaitAsync();
        var (elapsed, processCpuEnd, threadsEnd) = (clock.Elapsed, ProcessCpu(), ThreadCpu());
        var (readings, kinds) = (count - first, ByKind(threads, threadsEnd));
        var cpu = new CpuPerReading((processCpuEnd - processCpu).TotalMicroseconds / readings, (PostgresCpu(stack) - postgresCpu).TotalMicroseconds / readings,
            kinds.GetValueOrDefault(JitThread).Cpu.TotalMicroseconds / readings, (double)(GC.GetTotalAllocatedBytes(precise: true) - allocated) / readings);
        // Whether the window was steady state: the methods compiled in it (any tier, any thread) and the JIT's time on them,
        // read before the lines below compile their own code.
        var (compiled, compiling, collected) = (JitInfo.GetCompiledMethodCount() - jitMethods, JitInfo.GetCompilationTime() - jitTime, GC.CollectionCount(0) - collections);
        AnsiConsole.MarkupLineInterpolated($"  The JIT in the window: {compiled:N0} methods compiled, {compiling.TotalMilliseconds:N0} ms compiling. Garbage collections: {collected:N0}.");
        AnsiConsole.MarkupLineInterpolated($"  This process's CPU by thread kind, µs per reading (threads; sleeps, preemptions per 1,000 readings): {ThreadShares(kinds, readings)}; threads that ended in the window {ProcessCpuLeft(kinds, processCpuEnd - processCpu).TotalMicroseconds / readings:F1}.");
        var wal = await WalPositionAsync(stack) - walAtStart;
        // Wide enough for the statements' text: the figures are what an A/B of the append compares.
        AnsiConsole.Profile.Width = Math.Max(AnsiConsole.Profile.Width, 160);
        await share.PrintAsync(readings);
        AnsiConsole.MarkupLineInterpolated($"  WAL written in the window (from its insert position; the window's edges fall inside batches): {wal / readings:N0} bytes per reading.");
        await PrintStorageAsync(stack);
        return (new Throughput("processors", readings, elapsed), cpu);

        async Task WaitAsync()
        {
            if (deadline.Elapsed > TimeSpan.FromMinutes(10)) throw new TimeoutException($"The processors took {processor.Processed:N0} of {count:N0} readings in 10 minutes.");
            await Task.Delay(20, stop);
        }
    }

    private static Recovery Recover(List<(string Device, byte[] Envelope)> readings, CancellationToken stop)
    {
        var parsed = readings.Select(r => EnvelopeParser.Parse(r.Envelope, EnvelopeLimits.Default).Reading!).ToArray();
        var (clock, cpu) = (Stopwatch.StartNew(), ProcessCpu());
        Parallel.For(0, parsed.Length, new ParallelOptions { CancellationToken = stop }, i =>
        {
            if (parsed[i].TryRecoverSigner(out _) != SignatureCheck.Valid) throw new InvalidOperationException("A bench reading did not verify.");
        });
        return new Recovery(parsed.Length / clock.Elapsed.TotalSeconds, (ProcessCpu() - cpu).TotalMicroseconds / parsed.Length);
    }

    private static TimeSpan ProcessCpu() => Process.GetCurrentProcess().TotalProcessorTime;

    /// <summary>What one thread had done: its kind, CPU time, and how often it went to sleep (voluntary context switches) or was preempted (involuntary ones).</summary>
    private readonly record struct ThreadUse(string Kind, TimeSpan Cpu, long Sleeps, long Preempted);

    /// <summary>
    /// This process's threads by id, from /proc/self/task (each thread's utime + stime, name and context switches), with
    /// their kind: the thread pool's workers, the GC's threads, the JIT's tier-1 compiler, librdkafka's threads (the
    /// consumer's and producers' and the embedded broker's), the main thread and the rest by name.
    /// </summary>
    private static Dictionary<string, ThreadUse> ThreadCpu()
    {
        var main = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var threads = new Dictionary<string, ThreadUse>();
        foreach (var folder in Directory.EnumerateDirectories("/proc/self/task"))
        {
            try
            {
                var id = Path.GetFileName(folder);
                var kind = id == main ? "main" : ThreadKind(File.ReadAllText(Path.Combine(folder, "comm")).TrimEnd('\n'));
                var ticks = StatTicks(File.ReadAllText(Path.Combine(folder, "stat")), 2);
                var status = File.ReadAllLines(Path.Combine(folder, "status"));
                threads[id] = new ThreadUse(kind, TimeSpan.FromMilliseconds(ticks * 10), Switches(status, "voluntary_ctxt_switches:"), Switches(status, "nonvoluntary_ctxt_switches:"));
            }
            catch (IOException)
            {
                // ended meanwhile
            }
        }
        return threads;

        static long Switches(string[] status, string name) =>
            long.Parse(status.First(l => l.StartsWith(name, StringComparison.Ordinal))[name.Length..], System.Globalization.CultureInfo.InvariantCulture);
    }

    private const string JitThread = "JIT tier-1";

    private static string ThreadKind(string comm) => comm switch
    {
        _ when comm.StartsWith(".NET TP Worker", StringComparison.Ordinal) => "thread pool",
        _ when comm.StartsWith(".NET Server GC", StringComparison.Ordinal) || comm.StartsWith(".NET BGC", StringComparison.Ordinal) => "GC",
        _ when comm.StartsWith(".NET Tiered Com", StringComparison.Ordinal) => JitThread,
        _ when comm.StartsWith("rdk:", StringComparison.Ordinal) => "librdkafka",
        // Other names without their numbers, so threads of one kind add up.
        _ => comm.TrimEnd('0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '#', '-', ' '),
    };

    /// <summary>What a kind of thread did between two reads: CPU time, its threads at the end, sleeps and preemptions.</summary>
    private readonly record struct KindUse(TimeSpan Cpu, int Threads, long Sleeps, long Preempted);

    /// <summary>
    /// By kind, thread by thread (a thread started in between counts from zero; the JIT's and the pool's threads come and
    /// go), what the threads alive at the end did since <paramref name="start"/>.
    /// </summary>
    private static Dictionary<string, KindUse> ByKind(Dictionary<string, ThreadUse> start, Dictionary<string, ThreadUse> end)
    {
        var kinds = new Dictionary<string, KindUse>();
        foreach (var (id, thread) in end)
        {
            var (before, sum) = (start.GetValueOrDefault(id), kinds.GetValueOrDefault(thread.Kind));
            kinds[thread.Kind] = new KindUse(sum.Cpu + thread.Cpu - before.Cpu, sum.Threads + 1, sum.Sleeps + thread.Sleeps - before.Sleeps, sum.Preempted + thread.Preempted - before.Preempted);
        }
        return kinds;
    }

    /// <summary>
    /// Per reading, by thread kind (largest first): CPU µs, the kind's threads, and per 1,000 readings its sleeps and
    /// preemptions — a worker that spins before it sleeps sleeps less, and more runnable threads than cores are preempted more.
    /// </summary>
    private static string ThreadShares(Dictionary<string, KindUse> kinds, long readings) =>
        string.Join(", ", kinds.Where(k => k.Value.Cpu > TimeSpan.Zero || k.Value.Sleeps > 0).OrderByDescending(k => k.Value.Cpu).ThenByDescending(k => k.Value.Sleeps)
            .Select(k => $"{k.Key} {k.Value.Cpu.TotalMicroseconds / readings:F1} ({k.Value.Threads}; {k.Value.Sleeps * 1000.0 / readings:F0}, {k.Value.Preempted * 1000.0 / readings:F0})"));

    /// <summary>The process's CPU that no thread alive at the end accounts for: that of threads that ended in between.</summary>
    private static TimeSpan ProcessCpuLeft(Dictionary<string, KindUse> kinds, TimeSpan process) => kinds.Values.Aggregate(process, (left, k) => left - k.Cpu);

    /// <summary>The sum of <paramref name="count"/> CPU fields (utime, stime, cutime, cstime) from a /proc stat line, in clock ticks.</summary>
    private static long StatTicks(string stat, int count) =>
        stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[11..(11 + count)].Sum(f => long.Parse(f, System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>
    /// CPU time of the scratch PostgreSQL cluster from /proc: the postmaster's own, that of its children that ended
    /// (connections closed), and that of those still running.
    /// </summary>
    internal static TimeSpan PostgresCpu(Scratch stack)
    {
        var postmaster = int.Parse(File.ReadLines(Path.Combine(stack.Folder, "postgres", "postmaster.pid")).First(), System.Globalization.CultureInfo.InvariantCulture);
        long ticks = 0;
        foreach (var folder in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(folder), out var pid)) continue;
            string stat;
            try
            {
                stat = File.ReadAllText(Path.Combine(folder, "stat"));
            }
            catch (IOException)
            {
                continue; // ended meanwhile
            }
            // After "pid (name) ": state, ppid, … utime (14th field), stime, cutime, cstime.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            var ppid = int.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture);
            if (pid == postmaster) ticks += StatTicks(stat, 4);
            else if (ppid == postmaster) ticks += StatTicks(stat, 2);
        }
        // Linux reports these in clock ticks of 1/100 s (USER_HZ).
        return TimeSpan.FromMilliseconds(ticks * 10);
    }

    /// <summary>Where PostgreSQL inserts its next WAL record, in bytes: the difference is what was written meanwhile, whoever wrote it.</summary>
    private static async Task<decimal> WalPositionAsync(Scratch stack)
    {
        await using var connection = await stack.Services.GetRequiredService<NpgsqlDataSource>().OpenConnectionAsync();
        await using var command = new NpgsqlCommand("SELECT pg_current_wal_insert_lsn() - '0/0'", connection);
        return (decimal)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>What each stored reading takes: the event tables' and the processors' indexes, and the event bodies' size.</summary>
    private static async Task PrintStorageAsync(Scratch stack)
    {
        await using var connection = await stack.Services.GetRequiredService<NpgsqlDataSource>().OpenConnectionAsync();
        var schema = stack.Store.Schema();
        await using var command = new NpgsqlCommand($"""
            SELECT c.relname, i.relname, pg_relation_size(i.oid), pg_get_indexdef(i.oid)
            FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = '{schema}' AND c.relname IN ('mt_events', 'mt_streams', 'accepted_seqs') ORDER BY 1, 2;
            SELECT count(*), pg_relation_size('{schema}.mt_events'), avg(pg_column_size(data)), avg(octet_length(data::text)), avg(pg_column_size(e.*)),
                (SELECT count(*) FROM {schema}.dead_letters)
            FROM {schema}.mt_events e
            """, connection);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            AnsiConsole.MarkupLineInterpolated($"  Index {reader.GetString(0)}.{reader.GetString(1)}: {reader.GetInt64(2) / 1024:N0} KB — {reader.GetString(3)}");
        await reader.NextResultAsync();
        await reader.ReadAsync();
        AnsiConsole.MarkupLineInterpolated($"  mt_events: {reader.GetInt64(0):N0} rows, heap {reader.GetInt64(1) / reader.GetInt64(0):N0} B per row; body {reader.GetDecimal(2):N0} B as jsonb, {reader.GetDecimal(3):N0} B as text; row {reader.GetDecimal(4):N0} B; dead letters {reader.GetInt64(5):N0}.");
    }

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";

    /// <summary>The rows the processors write, as one binary COPY: stream id, sequence, type, JSON body.</summary>
    private static async Task<Throughput> CopyAsync(Scratch stack, List<(string Device, byte[] Envelope)> readings)
    {
        var rows = readings.Select(r =>
        {
            var reading = EnvelopeParser.Parse(r.Envelope, EnvelopeLimits.Default).Reading!;
            var body = JsonSerializer.Serialize(new ReadingAccepted(reading.Id, reading.Content.Seq, reading.Content.DeviceTime, DateTimeOffset.UtcNow,
                reading.Content.Signals.ToDictionary(), 0, 0), JsonSerializerOptions.Web);
            return (r.Device, reading.Content.Seq, body);
        }).ToList();
        await using var connection = await stack.Services.GetRequiredService<NpgsqlDataSource>().OpenConnectionAsync();
        await using (var create = new NpgsqlCommand("CREATE TABLE IF NOT EXISTS bench_copy (stream_id text, version bigint, type text, data jsonb); TRUNCATE bench_copy", connection))
            await create.ExecuteNonQueryAsync();
        var clock = Stopwatch.StartNew();
        await using (var writer = await connection.BeginBinaryImportAsync("COPY bench_copy (stream_id, version, type, data) FROM STDIN (FORMAT BINARY)"))
        {
            foreach (var (device, seq, body) in rows)
            {
                await writer.StartRowAsync();
                await writer.WriteAsync(device, NpgsqlDbType.Text);
                await writer.WriteAsync(seq, NpgsqlDbType.Bigint);
                await writer.WriteAsync("reading_accepted.v1", NpgsqlDbType.Text);
                await writer.WriteAsync(body, NpgsqlDbType.Jsonb);
            }
            await writer.CompleteAsync();
        }
        return new Throughput("copy", rows.Count, clock.Elapsed);
    }

}
