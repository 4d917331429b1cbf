using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Confluent.Kafka;
using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Core.Kafka;
using Pipeline.Infra.Kafka;
using Pipeline.Infra.Stack;
using Spectre.Console;

namespace Pipeline.Bench;

/// <summary>
/// The ingest edge under load from a separate process (HTTP batches of signed readings) against raw Confluent.Kafka
/// produce of the same envelope bytes, on the same embedded broker, in one run.
/// </summary>
public static class IngestBench
{
    private const int Devices = 200;
    private const int ReadingsPerDevice = 100;
    private const int BatchSize = 100;
    private const int Concurrency = 16;

    public static async Task RunAsync(TimeSpan duration)
    {
        await using var scratch = await Scratch.StartAsync(withEventStore: false);
        var stack = scratch.Stack;
        var runs = new List<(string Name, LoadResult Load)>();
        foreach (var verify in new[] { false, true })
        {
            var port = Scratch.FreePort();
            var configuration = PipelineConfiguration.Build([
                new("Endpoints:IngestPort", $"{port}"), new("Endpoints:MqttPort", "0"), new("LOG_FORMAT", "json"),
                new("Ingest:VerifySignatures", verify ? "true" : "false"),
                new("Ingest:DeviceReadingsPerSecond", "1000000"), new("Ingest:DeviceBurst", "1000000"),
                new("Ingest:ClientRequestsPerSecond", "1000000"), new("Ingest:ClientBurst", "1000000"),
            ]);
            var app = PipelineHost.Build(configuration, stack, Roles.Ingest);
            await app.StartAsync();
            AnsiConsole.MarkupLineInterpolated($"Load process: posting signed batches over HTTP (edge signature check {(verify ? "on" : "off")})…");
            runs.Add(($"HTTP ingest, edge signature check {(verify ? "on" : "off (default)")}", await RunLoadProcessAsync($"http://127.0.0.1:{port}/v1/readings", duration)));
            await app.StopAsync();
            await app.DisposeAsync();
        }

        AnsiConsole.MarkupLine("Baseline: raw Confluent.Kafka produce of the same envelopes…");
        var envelopes = SignedBatches().SelectMany(b => b.Envelopes).ToList();
        // The same partitioning as the gateway's topic, so the baseline does the same work.
        await KafkaTopics.EnsureAsync(stack.KafkaBootstrapServers, stack.EmbeddedKafka, stack.Options.Kafka.Partitions, [RawTopic]);
        var raw = ProduceRaw(stack, envelopes, duration);

        var table = new Table().AddColumn($"Path ({BatchSize} readings/batch, {Concurrency} connections)").AddColumn(new TableColumn("Readings/s").RightAligned())
            .AddColumn(new TableColumn("p50").RightAligned()).AddColumn(new TableColumn("p99").RightAligned()).AddColumn(new TableColumn("vs raw").RightAligned());
        foreach (var (name, load) in runs)
            table.AddRow(name, $"{load.ReadingsPerSecond:N0}", $"{load.P50Ms:F1} ms", $"{load.P99Ms:F1} ms", $"{load.ReadingsPerSecond / raw.PerSecond:P1}");
        table.AddRow("raw Confluent.Kafka produce, same bytes", $"{raw.PerSecond:N0}", "", "", "100 %");
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLineInterpolated($"Failed requests: {runs.Sum(r => r.Load.Errors)}. The server, the load process and the broker share {Environment.ProcessorCount} cores.");
    }

    private sealed record LoadResult(long Readings, double Seconds, double P50Ms, double P99Ms, long Errors)
    {
        public double ReadingsPerSecond => Readings / Seconds;
    }

    private static async Task<LoadResult> RunLoadProcessAsync(string url, TimeSpan duration)
    {
        var start = new ProcessStartInfo("dotnet", [typeof(IngestBench).Assembly.Location, "ingest-load", url, $"{duration.TotalSeconds}"]) { RedirectStandardOutput = true };
        using var process = Process.Start(start)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        return JsonSerializer.Deserialize<LoadResult>(output.Trim().Split('\n')[^1], JsonSerializerOptions.Web)
            ?? throw new InvalidOperationException("The load process printed no result: " + output);
    }

    /// <summary>The load process: pre-signs batches, then posts them from many connections and times each request.</summary>
    public static async Task<int> LoadAsync(string url, TimeSpan duration)
    {
        var batches = SignedBatches().Select(b => Encoding.UTF8.GetBytes("[" + string.Join(",", b.Envelopes.Select(e => Encoding.UTF8.GetString(e.Envelope))) + "]")).ToArray();
        using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = Concurrency });
        var latencies = new List<double>();
        long readings = 0, errors = 0;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, Concurrency).Select(async worker =>
        {
            var mine = new List<double>();
            for (var i = worker; clock.Elapsed < duration; i += Concurrency)
            {
                var content = new ByteArrayContent(batches[i % batches.Length]);
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

    private static Throughput ProduceRaw(DevStack stack, List<(string Device, byte[] Envelope)> envelopes, TimeSpan duration)
    {
        var config = new KafkaOptions().ProducerConfig(stack.KafkaBootstrapServers, "bench-raw");
        using var producer = new ProducerBuilder<string, byte[]>(config).Build();
        long delivered = 0;
        // The two headers the gateway adds to every message.
        var headers = new Headers { { HeaderNames.ReceivedAt, Encoding.ASCII.GetBytes(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture)) }, { HeaderNames.Transport, "http"u8.ToArray() } };
        var clock = Stopwatch.StartNew();
        for (var i = 0; clock.Elapsed < duration; i++)
        {
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

    private static IEnumerable<(List<(string Device, byte[] Envelope)> Envelopes, int Index)> SignedBatches()
    {
        var keys = Enumerable.Range(0, Devices).Select(i => EthKey.FromSeed(Encoding.UTF8.GetBytes($"bench-device-{i}"))).ToArray();
        var start = DateTimeOffset.UtcNow;
        var readings = new List<(string, byte[])>();
        for (var seq = 1; seq <= ReadingsPerDevice; seq++)
        {
            foreach (var key in keys)
            {
                var payload = ReadingWriter.Payload(key.Address, seq, start.AddSeconds(seq), DeviceKind.Vehicle,
                    [new("Vehicle.Speed", 50 + seq % 30), new("Vehicle.Powertrain.CombustionEngine.Speed", 2000 + seq), new("Vehicle.CurrentLocation.Latitude", 52.37), new("Vehicle.CurrentLocation.Longitude", 4.89)],
                    ["410C1AF8"]);
                readings.Add((key.Address.ToLowerHex(), ReadingWriter.Sign(key, payload)));
            }
        }
        return readings.Chunk(BatchSize).Select((chunk, index) => (chunk.ToList(), index));
    }

    private static double Percentile(List<double> sorted, double p) => sorted.Count == 0 ? 0 : sorted[(int)Math.Min(sorted.Count - 1, Math.Round(p * (sorted.Count - 1)))];

}
