using System.Diagnostics;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Crypto;
using Pipeline.Ingest.Mqtt;
using Pipeline.Tests.Support.Fuzz;
using Spectre.Console;

namespace Pipeline.Bench;

/// <summary>
/// The fuzz at full size: a million hostile bodies through the batch parser and a million typed data through the
/// registry's parsers, on every core; then ten thousand requests over HTTP (ingest and registry) and ten thousand MQTT
/// publishes against a running host on scratch servers, and an honest device served after. A new seed each run
/// (printed), so runs explore new bodies; any failure names its seed, stream and index to replay it. Not a timing
/// benchmark: its figures are the counts, and bodies per second for scale.
/// </summary>
public static class FuzzBench
{
    private const long ParserBodies = 1_000_000;
    private const int HttpRequests = 10_000;
    private const int MqttPublishes = 10_000;

    public static async Task RunAsync(TimeSpan _)
    {
        var seed = (ulong)DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        AnsiConsole.MarkupLineInterpolated($"Seed {seed}");

        var clock = Stopwatch.StartNew();
        var (readings, registry) = AnsiConsole.Progress().Start(progress =>
        {
            var task = progress.AddTask("Parsers: hostile bodies", maxValue: ParserBodies * 2);
            return ParserFuzz.RunParallel(seed, ParserBodies, done => task.Value = done);
        });
        var parserSeconds = clock.Elapsed.TotalSeconds;
        Print("Batch and envelope parsers", readings, $"{readings.Readings:N0} items read, {readings.Bodies / parserSeconds:N0} bodies/s for both parsers together");
        Print("Registry parsers and decisions (registration and transfer per body)", registry, "");

        await using var scratch = await Scratch.StartAsync(withEventStore: true);
        var settings = new Dictionary<string, string?>
        {
            ["Endpoints:ApiPort"] = $"{Scratch.FreePort()}", ["Endpoints:IngestPort"] = $"{Scratch.FreePort()}", ["Endpoints:MqttPort"] = "0",
            ["LOG_FORMAT"] = "json",
            // No processors drain the topic here; the backlog gate stays in the path without closing it.
            ["Ingest:Backlog:RetentionBytes"] = $"{1L << 40}",
            ["Ingest:ClientRequestsPerSecond"] = "1000000", ["Ingest:ClientBurst"] = "1000000",
            ["Ingest:DeviceReadingsPerSecond"] = "1000000", ["Ingest:DeviceBurst"] = "1000000",
            ["Registry:Limits:ClientWritesPerSecond"] = "1000000", ["Registry:Limits:ClientWriteBurst"] = "1000000",
        };
        var app = PipelineHost.Build(scratch.Configuration([.. settings]), Roles.Api | Roles.Ingest);
        await app.StartAsync();
        try
        {
            var ingest = new Uri($"http://127.0.0.1:{settings["Endpoints:IngestPort"]}");
            var api = new Uri($"http://127.0.0.1:{settings["Endpoints:ApiPort"]}");
            var mqttPort = app.Services.GetRequiredService<MqttGateway>().Port;
            var http = await AnsiConsole.Status().StartAsync($"HTTP: {HttpRequests:N0} hostile requests to ingest and the registry…", _ => EndpointFuzz.HttpAsync(ingest, api, seed, HttpRequests));
            var mqtt = await AnsiConsole.Status().StartAsync($"MQTT: {MqttPublishes:N0} hostile publishes…", _ => EndpointFuzz.MqttAsync("127.0.0.1", mqttPort, EthKey.Generate(), seed, MqttPublishes));
            PrintEndpoints("HTTP (status per route)", http);
            PrintEndpoints("MQTT (PUBACK reason per publish)", mqtt);
            await EndpointFuzz.CheckHonestDeviceAsync(ingest, api, "127.0.0.1", mqttPort);
            AnsiConsole.MarkupLine("Honest device after the fuzz: registered (201), reading over HTTP accepted (202), over MQTT acknowledged (PUBACK success).");
            var failures = http.Failures.Concat(mqtt.Failures).ToList();
            foreach (var failure in failures.Take(20)) AnsiConsole.WriteLine(failure);
            AnsiConsole.MarkupLineInterpolated($"[bold]{readings.Bodies + registry.Bodies:N0} bodies through the parsers, {http.Requests + mqtt.Requests:N0} through the endpoints: {failures.Count} failures.[/]");
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    private static void Print(string title, FuzzCounts counts, string note)
    {
        var table = new Table().Title(title).AddColumn("Outcome").AddColumn(new TableColumn("Count").RightAligned());
        foreach (var (outcome, count) in counts.Outcomes) table.AddRow(outcome, $"{count:N0}");
        table.Caption($"{counts.Bodies:N0} bodies, no exception. {note}");
        AnsiConsole.Write(table);
    }

    private static void PrintEndpoints(string title, EndpointCounts counts)
    {
        var table = new Table().Title(title).AddColumn("Answer").AddColumn(new TableColumn("Count").RightAligned());
        foreach (var (answer, count) in counts.Answers) table.AddRow(answer, $"{count:N0}");
        table.Caption($"{counts.Requests:N0} requests, {counts.Failures.Count} failures");
        AnsiConsole.Write(table);
    }
}
