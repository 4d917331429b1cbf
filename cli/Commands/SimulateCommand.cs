using System.CommandLine;
using System.Globalization;
using Pipeline.Cli.Hosting;
using Pipeline.Simulator;
using Spectre.Console;

namespace Pipeline.Cli.Commands;

/// <summary>`depin simulate`: a fleet of signed devices (synthetic or replayed from recordings) against a running pipeline.</summary>
public static class SimulateCommand
{
    public static Command Create()
    {
        var vehicles = new Option<int>("--vehicles") { Description = "Simulated vehicles (OBD dongles).", DefaultValueFactory = _ => 20 };
        var stations = new Option<int>("--stations") { Description = "Simulated weather stations.", DefaultValueFactory = _ => 10 };
        var duration = new Option<string>("--duration") { Description = "How long to run: 60s, 5m, 1h.", DefaultValueFactory = _ => "60s" };
        var rate = new Option<double?>("--rate") { Description = "Target readings per second over the whole fleet (default: vehicles every 5 s while driving, stations every minute)." };
        var transport = new Option<string>("--transport") { Description = "http, mqtt, or both (half the devices each).", DefaultValueFactory = _ => "http" };
        transport.AcceptOnlyFromAmong("http", "mqtt", "both");
        var misbehave = new Option<string>("--misbehave") { Description = "all, or any of dup,old,seq,sig,unregistered,range,skew,teleport,malformed." };
        var misbehaveRate = new Option<double>("--misbehave-rate") { Description = "Share of readings that misbehave when --misbehave is on.", DefaultValueFactory = _ => 0.05 };
        var seed = new Option<int>("--seed") { Description = "Seed: the same seed is the same fleet, keys and physics.", DefaultValueFactory = _ => 1 };
        var replay = new Option<string[]>("--replay") { Description = "Recorded files to replay as signed readings (simulator/Replay/Recorded holds the bundled ones).", AllowMultipleArgumentsPerToken = true };
        var speedup = new Option<double>("--speedup") { Description = "Replay this many times faster than recorded.", DefaultValueFactory = _ => 1 };
        var api = new Option<string>("--api") { Description = "Registry API URL (default from PIPELINE_API_PORT, http://127.0.0.1:5080)." };
        var ingest = new Option<string>("--ingest") { Description = "Ingest URL (default from PIPELINE_INGEST_PORT, http://127.0.0.1:5081)." };
        var mqtt = new Option<string>("--mqtt") { Description = "MQTT host:port (default 127.0.0.1:1883 or PIPELINE_MQTT_PORT)." };
        var quiet = new Option<bool>("--no-progress") { Description = "Print only the summary (otherwise progress: live on a terminal, a line every 5 s when piped)." };

        var command = new Command("simulate", "Run a simulated fleet of signed devices against a running pipeline (./depin up), with progress and a summary.")
        {
            vehicles, stations, duration, rate, transport, misbehave, misbehaveRate, seed, replay, speedup, api, ingest, mqtt, quiet,
        };
        command.SetAction(async (result, cancellation) =>
        {
            var configuration = PipelineConfiguration.Build([]);
            var endpoints = PipelineConfiguration.Endpoints(configuration);
                        var mqttAddress = result.GetValue(mqtt) ?? $"{endpoints.ListenAddress}:{endpoints.MqttPort}";
            SimulatorOptions options;
            try
            {
                options = new SimulatorOptions
                {
                    Vehicles = result.GetValue(vehicles),
                    Stations = result.GetValue(stations),
                    Duration = ParseDuration(result.GetValue(duration)!),
                    Rate = result.GetValue(rate),
                    Transport = Enum.Parse<TransportMode>(result.GetValue(transport)!, ignoreCase: true),
                    Misbehave = SimulatorOptions.ParseMisbehaviours(result.GetValue(misbehave)),
                    MisbehaveRate = result.GetValue(misbehaveRate),
                    Seed = result.GetValue(seed),
                    Replay = result.GetValue(replay) ?? [],
                    Speedup = result.GetValue(speedup),
                    ApiUrl = result.GetValue(api) ?? endpoints.ApiUrl,
                    IngestUrl = result.GetValue(ingest) ?? endpoints.IngestUrl,
                    MqttHost = mqttAddress[..mqttAddress.LastIndexOf(':')],
                    MqttPort = int.Parse(mqttAddress[(mqttAddress.LastIndexOf(':') + 1)..], CultureInfo.InvariantCulture),
                    StateDirectory = Path.Combine(PipelineConfiguration.DataDirectory(configuration), "simulator"),
                    ShowProgress = !result.GetValue(quiet),
                };
            }
            catch (Exception e) when (e is ArgumentException or FormatException)
            {
                AnsiConsole.MarkupLineInterpolated($"[red]{e.Message}[/]");
                return 2;
            }
            return await RunAsync(options, cancellation);
        });
        return command;
    }

    public static async Task<int> RunAsync(SimulatorOptions options, CancellationToken cancellation)
    {
        if (options.Speedup > 1 && options.Replay.Any(f => Path.GetFileName(f).StartsWith("envirocar", StringComparison.Ordinal) || Path.GetFileName(f).StartsWith("carscanner", StringComparison.Ordinal)))
            AnsiConsole.MarkupLine("[yellow]Replaying a vehicle trace faster than recorded compresses its timestamps: its GPS fixes then imply speeds × the speed-up, which the processors refuse as teleports. Replay vehicle traces at --speedup 1.[/]");
        var simulation = new Simulation(options, TimeProvider.System);
        var run = simulation.RunAsync(cancellation);
        var started = System.Diagnostics.Stopwatch.StartNew();
        if (options.ShowProgress && !Console.IsOutputRedirected)
        {
            await AnsiConsole.Live(Progress(simulation.Stats, options, TimeSpan.Zero)).StartAsync(async live =>
            {
                while (!run.IsCompleted)
                {
                    await Task.WhenAny(run, Task.Delay(500, CancellationToken.None));
                    live.UpdateTarget(Progress(simulation.Stats, options, started.Elapsed));
                }
            });
        }
        else if (options.ShowProgress)
        {
            // Piped or logged: a plain line now and then, so a long replay shows it is alive before its summary.
            while (!run.IsCompleted)
            {
                await Task.WhenAny(run, Task.Delay(ProgressLineInterval, CancellationToken.None));
                if (!run.IsCompleted) Console.WriteLine(ProgressLine(simulation.Stats, started.Elapsed));
            }
        }
        var result = await run;
        var ledger = Path.Combine(options.StateDirectory, $"ledger-{options.StateName}.ndjson");
        result.Ledger.WriteTo(ledger);
        PrintSummary(result, options, ledger);
        return 0;
    }

    private static readonly TimeSpan ProgressLineInterval = TimeSpan.FromSeconds(5);

    private static string ProgressLine(SimulationStats stats, TimeSpan elapsed) => string.Create(CultureInfo.InvariantCulture,
        $"{elapsed:mm\\:ss} registered {stats.Registered:N0}, sent {stats.Sent:N0}, acknowledged {stats.Acknowledged:N0}, refused {stats.Refused:N0}, retried {stats.Retried:N0} ({stats.Acknowledged / Math.Max(elapsed.TotalSeconds, 0.001):N0}/s)");

    private static Table Progress(SimulationStats stats, SimulatorOptions options, TimeSpan elapsed)
    {
        var seconds = Math.Max(elapsed.TotalSeconds, 0.001);
        var table = new Table().Border(TableBorder.Rounded).Title($"[bold]depin simulate[/] — {options.Vehicles} vehicles, {options.Stations} stations{(options.Replay.Count > 0 ? $", replay ×{options.Speedup}" : "")}")
            .AddColumn("Elapsed").AddColumn("Registered").AddColumn("Sent").AddColumn("Acknowledged").AddColumn("Refused").AddColumn("Retried").AddColumn("Rate");
        table.AddRow($"{elapsed:mm\\:ss} / {options.Duration:mm\\:ss}", $"{stats.Registered:N0}", $"{stats.Sent:N0}", $"[green]{stats.Acknowledged:N0}[/]", $"[yellow]{stats.Refused:N0}[/]", $"{stats.Retried:N0}", $"{stats.Acknowledged / seconds:N0}/s");
        if (!stats.RefusedByReason.IsEmpty)
            table.Caption("refused: " + string.Join(", ", stats.RefusedByReason.OrderBy(p => p.Key).Select(p => $"{p.Key} {p.Value}")));
        return table;
    }

    private static void PrintSummary(SimulationResult result, SimulatorOptions options, string ledger)
    {
        var entries = result.Ledger.Entries;
        var table = new Table().Border(TableBorder.Rounded).Title("[bold]Summary[/]").AddColumn("").AddColumn(new TableColumn("Readings").RightAligned());
        table.AddRow("Devices (registered)", $"{result.Fleet.Devices.Count:N0} ({result.Stats.Registered:N0})");
        table.AddRow("Sent", $"{entries.Count:N0}");
        table.AddRow("Acknowledged by the edge", $"[green]{entries.Count(e => e.Edge == "accepted"):N0}[/]");
        table.AddRow("Answered duplicate (already acknowledged)", $"{entries.Count(e => e.Edge == "duplicate"):N0}");
        foreach (var group in entries.Where(e => e.Edge.StartsWith("refused:", StringComparison.Ordinal)).GroupBy(e => e.Edge[8..]).OrderBy(g => g.Key))
            table.AddRow($"Refused at the edge: {group.Key}", $"[yellow]{group.Count():N0}[/]");
        var unanswered = entries.Count(e => e.Edge == "");
        if (unanswered > 0) table.AddRow("Unanswered (stopped before an answer)", $"[red]{unanswered:N0}[/]");
        table.AddRow("Retried (503, 429, reconnect)", $"{result.Stats.Retried:N0}");
        foreach (var (error, count) in result.Stats.Recovered)
            table.AddRow(Markup.Escape($"Reconnected after: {error}"), $"{count:N0}");
        foreach (var (error, count) in result.Stats.Failures)
            table.AddRow(Markup.Escape($"Failed to send: {error}"), $"[red]{count:N0} batches[/]");
        foreach (var group in entries.Where(e => e.Misbehaviour is not null).GroupBy(e => $"{e.Misbehaviour} → expect {e.Expected}").OrderBy(g => g.Key))
            table.AddRow($"Misbehaviour {group.Key}", $"{group.Count():N0}");
        table.AddRow("Rate", $"{entries.Count / Math.Max(result.Elapsed.TotalSeconds, 0.001):N1} readings/s over {result.Elapsed.TotalSeconds:N0} s");
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLineInterpolated($"Keys and sequence numbers saved in [blue]{options.StateDirectory}[/]; the same --seed continues this fleet.");
        AnsiConsole.MarkupLineInterpolated($"Ledger (every reading and the outcome the pipeline owes it): [blue]{ledger}[/]");
    }

    /// <summary>60s, 5m, 1h, 90 (seconds), or hh:mm:ss.</summary>
    public static TimeSpan ParseDuration(string text)
    {
        text = text.Trim();
        if (TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var span) && text.Contains(':')) return span;
        var unit = text[^1];
        var number = char.IsLetter(unit) ? text[..^1] : text;
        if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || value <= 0)
            throw new FormatException($"'{text}' is not a duration; write 60s, 5m or 1h.");
        return unit switch
        {
            's' or >= '0' and <= '9' => TimeSpan.FromSeconds(value),
            'm' => TimeSpan.FromMinutes(value),
            'h' => TimeSpan.FromHours(value),
            _ => throw new FormatException($"'{text}' is not a duration; write 60s, 5m or 1h."),
        };
    }
}
