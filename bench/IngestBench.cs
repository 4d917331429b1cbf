using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Confluent.Kafka;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Core.Kafka;
using Pipeline.Infra.Kafka;
using Spectre.Console;

namespace Pipeline.Bench;

/// <summary>
/// The ingest edge under load from a separate process (HTTP batches of signed readings) against raw Confluent.Kafka
/// produce of the same envelope bytes, on the same embedded broker, in one run. Every reading the load sends is a new
/// one: the edge answers a reading it already had "duplicate" without producing it, which would measure something else.
/// Beside readings per second, the CPU time this process (edge and broker, or producer and broker) spent per reading:
/// on a machine others share, the steadier of the two.
/// </summary>
public static class IngestBench
{
    private const int Devices = 200;
    private const int BatchSize = 100;
    private const int Concurrency = 16;

    /// <summary>More readings per second of the run than the edge takes here, so the load does not run out.</summary>
    private const int ReadingsPerSecond = 60_000;

    public static async Task RunAsync(TimeSpan duration, CancellationToken stop)
    {
        await using var scratch = await Scratch.StartAsync(withEventStore: false);
        var stack = scratch;
        var perDevice = (int)Math.Ceiling(duration.TotalSeconds * ReadingsPerSecond / Devices);
        var batches = AnsiConsole.Status().Start($"Signing {perDevice * Devices:N0} readings…", _ => SignedBatches(perDevice, stop).ToList());
        var batchFile = Path.Combine(scratch.Folder, "batches.bin");
        WriteBatches(batchFile, batches);
        var runs = new List<(string Name, LoadResult Load, double CpuPerReading)>();
        foreach (var verify in new[] { false, true })
        {
            var port = Scratch.FreePort();
            var configuration = stack.Configuration(
                new("Endpoints:IngestPort", $"{port}"), new("Endpoints:MqttPort", "0"), new("LOG_FORMAT", "json"),
                new("Ingest:VerifySignatures", verify ? "true" : "false"),
                new("Ingest:DeviceReadingsPerSecond", "1000000"), new("Ingest:DeviceBurst", "1000000"),
                new("Ingest:ClientRequestsPerSecond", "1000000"), new("Ingest:ClientBurst", "1000000"),
                // No processors drain the topic here: a retention this large keeps the backlog gate's bookkeeping in the
                // path without ever closing it.
                new("Ingest:Backlog:RetentionBytes", $"{1L << 40}"));
            await using var app = PipelineHost.Build(configuration, Roles.Ingest);
            await app.StartAsync(stop);
            try
            {
                AnsiConsole.MarkupLineInterpolated($"Load process: posting signed batches over HTTP (edge signature check {(verify ? "on" : "off")})…");
                var cpu = Process.GetCurrentProcess().TotalProcessorTime;
                var load = await RunLoadProcessAsync($"http://127.0.0.1:{port}/v1/readings", batchFile, duration, stop);
                runs.Add(($"HTTP ingest, edge signature check {(verify ? "on" : "off (default)")}", load, MicrosecondsEach(cpu, load.Readings)));
            }
            finally
            {
                await app.StopAsync(CancellationToken.None);
            }
        }

        AnsiConsole.MarkupLine("Baseline: raw Confluent.Kafka produce of the same envelopes…");
        var envelopes = batches.SelectMany(b => b.Envelopes).ToList();
        // The same partitioning as the gateway's topic, so the baseline does the same work.
        await stack.Servers.CreateTopicsAsync(new KafkaOptions().Partitions, RawTopic);
        var rawCpu = Process.GetCurrentProcess().TotalProcessorTime;
        var raw = ProduceRaw(stack, envelopes, duration, stop);
        var rawCpuPerReading = MicrosecondsEach(rawCpu, raw.Operations);

        var table = new Table().AddColumn($"Path ({BatchSize} readings/batch, {Concurrency} connections)").AddColumn(new TableColumn("Readings/s").RightAligned())
            .AddColumn(new TableColumn("p50").RightAligned()).AddColumn(new TableColumn("p99").RightAligned()).AddColumn(new TableColumn("vs raw").RightAligned())
            .AddColumn(new TableColumn("CPU/reading").RightAligned()).AddColumn(new TableColumn("raw ÷ it").RightAligned());
        foreach (var (name, load, cpuPerReading) in runs)
            table.AddRow(name, $"{load.ReadingsPerSecond:N0}", $"{load.P50Ms:F1} ms", $"{load.P99Ms:F1} ms", $"{load.ReadingsPerSecond / raw.PerSecond:P1}",
                $"{cpuPerReading:F1} µs", $"{rawCpuPerReading / cpuPerReading:P1}");
        table.AddRow("raw Confluent.Kafka produce, same bytes", $"{raw.PerSecond:N0}", "", "", "100 %", $"{rawCpuPerReading:F1} µs", "100 %");
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLineInterpolated($"Failed requests: {runs.Sum(r => r.Load.Errors)}. The server, the load process and the broker share {Environment.ProcessorCount} cores; CPU/reading is this process's (edge and broker; producer and broker), not the load process's.");
    }

    private static double MicrosecondsEach(TimeSpan cpuBefore, long readings) =>
        (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalMicroseconds / Math.Max(1, readings);

    private sealed record LoadResult(long Readings, double Seconds, double P50Ms, double P99Ms, long Errors)
    {
        public double ReadingsPerSecond => Readings / Seconds;
    }

    private static async Task<LoadResult> RunLoadProcessAsync(string url, string batchFile, TimeSpan duration, CancellationToken stop)
    {
        var start = new ProcessStartInfo("dotnet", [typeof(IngestBench).Assembly.Location, "ingest-load", url, batchFile, $"{duration.TotalSeconds}"]) { RedirectStandardOutput = true };
        using var process = Process.Start(start)!;
        // A stop signal ends the load process with this one, so it does not post on to an edge that is gone.
        using var kill = Interruption.KillOnStop(process, stop);
        var output = await process.StandardOutput.ReadToEndAsync(stop);
        await process.WaitForExitAsync(stop);
        return JsonSerializer.Deserialize<LoadResult>(output.Trim().Split('\n')[^1], JsonSerializerOptions.Web)
            ?? throw new InvalidOperationException("The load process printed no result: " + output);
    }

    /// <summary>
    /// The load process: reads the signed batches, then posts them from many connections and times each request, each
    /// batch once, until the time is up or every batch was sent.
    /// </summary>
    public static async Task<int> LoadAsync(string url, string batchFile, TimeSpan duration)
    {
        var batches = ReadBatches(batchFile);
        using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = Concurrency });
        var latencies = new List<double>();
        long readings = 0, errors = 0;
        var next = -1;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, Concurrency).Select(async worker =>
        {
            var mine = new List<double>();
            for (var i = Interlocked.Increment(ref next); clock.Elapsed < duration && i < batches.Count; i = Interlocked.Increment(ref next))
            {
                var content = new ByteArrayContent(batches[i]);
                content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                var started = Stopwatch.GetTimestamp();
                using var response = await client.PostAsync(url, content);
                mine.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                if (response.IsSuccessStatusCode) Interlocked.Add(ref readings, BatchSize);
                else Interlocked.Increment(ref errors);
            }
            lock (latencies) latencies.AddRange(mine);
        }));
        var seconds = clock.Elapsed.TotalSeconds;
        latencies.Sort();
        Console.WriteLine(JsonSerializer.Serialize(new LoadResult(readings, seconds, Percentile(latencies, 0.50), Percentile(latencies, 0.99), errors), JsonSerializerOptions.Web));
        return 0;
    }

    private const string RawTopic = "bench.raw";

    private static Throughput ProduceRaw(Scratch stack, List<(string Device, byte[] Envelope)> envelopes, TimeSpan duration, CancellationToken stop)
    {
        var config = new KafkaOptions { BootstrapServers = stack.KafkaBootstrapServers }.ProducerConfig("bench-raw");
        using var producer = new ProducerBuilder<string, byte[]>(config).Build();
        long delivered = 0;
        // The two headers the gateway adds to every message.
        var headers = new Headers { { HeaderNames.ReceivedAt, Encoding.ASCII.GetBytes(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture)) }, { HeaderNames.Transport, "http"u8.ToArray() } };
        var clock = Stopwatch.StartNew();
        for (var i = 0; clock.Elapsed < duration; i++)
        {
            stop.ThrowIfCancellationRequested();
            var (device, envelope) = envelopes[i % envelopes.Count];
            while (true)
            {
                try
                {
                    producer.Produce(RawTopic, new Message<string, byte[]> { Key = device, Value = envelope, Headers = headers }, r => { if (!r.Error.IsError) Interlocked.Increment(ref delivered); });
                    break;
                }
                catch (ProduceException<string, byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
                {
                    producer.Poll(TimeSpan.FromMilliseconds(10));
                }
            }
        }
        producer.Flush(TimeSpan.FromSeconds(30));
        return new Throughput("raw", Interlocked.Read(ref delivered), clock.Elapsed);
    }

    private static IEnumerable<(List<(string Device, byte[] Envelope)> Envelopes, int Index)> SignedBatches(int readingsPerDevice, CancellationToken stop)
    {
        var keys = Enumerable.Range(0, Devices).Select(i => EthKey.FromSeed(Encoding.UTF8.GetBytes($"bench-device-{i}"))).ToArray();
        var start = DateTimeOffset.UtcNow;
        var readings = new (string, byte[])[readingsPerDevice * Devices];
        Parallel.For(0, readings.Length, new ParallelOptions { CancellationToken = stop }, i =>
        {
            var (seq, key) = (i / Devices + 1, keys[i % Devices]);
            var payload = ReadingWriter.Payload(key.Address, seq, start.AddSeconds(seq), DeviceKind.Vehicle,
                [new("Vehicle.Speed", 50 + seq % 30), new("Vehicle.Powertrain.CombustionEngine.Speed", 2000 + seq), new("Vehicle.CurrentLocation.Latitude", 52.37), new("Vehicle.CurrentLocation.Longitude", 4.89)],
                ["410C1AF8"]);
            readings[i] = (key.Address.ToLowerHex(), ReadingWriter.Sign(key, payload));
        });
        return readings.Chunk(BatchSize).Select((chunk, index) => (chunk.ToList(), index));
    }

    /// <summary>The batches as the load process posts them (JSON arrays), one after another, each behind its length.</summary>
    private static void WriteBatches(string file, IEnumerable<(List<(string Device, byte[] Envelope)> Envelopes, int Index)> batches)
    {
        using var output = new BinaryWriter(File.Create(file));
        foreach (var (envelopes, _) in batches)
        {
            var json = Encoding.UTF8.GetBytes("[" + string.Join(",", envelopes.Select(e => Encoding.UTF8.GetString(e.Envelope))) + "]");
            output.Write(json.Length);
            output.Write(json);
        }
    }

    private static List<byte[]> ReadBatches(string file)
    {
        using var input = new BinaryReader(File.OpenRead(file));
        var batches = new List<byte[]>();
        while (input.BaseStream.Position < input.BaseStream.Length) batches.Add(input.ReadBytes(input.ReadInt32()));
        return batches;
    }

    private static double Percentile(List<double> sorted, double p) => sorted.Count == 0 ? 0 : sorted[(int)Math.Min(sorted.Count - 1, Math.Round(p * (sorted.Count - 1)))];

}
