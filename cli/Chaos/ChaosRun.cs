using System.Globalization;
using Pipeline.Cli.Hosting;
using Pipeline.Infra.Development;
using Pipeline.Infra.Hosting;
using Pipeline.Infra.Kafka;
using Pipeline.Simulator;
using Spectre.Console;

namespace Pipeline.Cli.Chaos;

/// <summary>What a chaos run is given: how long, the seed of its fleet and its faults, the fleet's pace, where everything listens.</summary>
public sealed record ChaosOptions(TimeSpan Duration, int Seed, double Rate, int Vehicles, int Stations, string? ReportFile);

/// <summary>
/// `depin chaos`: this process holds what must survive (the embedded brokers, the PostgreSQL cluster it starts, the
/// chain) and runs every stage as a child process; a misbehaving fleet drives the ingest edge while, at random, a stage
/// is killed (SIGKILL or SIGTERM) and started again, PostgreSQL restarts and brokers go down and up. At the end the
/// fleet stops, the stages drain, and <see cref="ChaosChecks"/> holds the store and the lake against the fleet's ledger.
/// </summary>
public static class ChaosRun
{
    // Generous: a stage killed just before the end starts again on a machine that may be busy with other work.
    private static readonly TimeSpan StartPatience = TimeSpan.FromMinutes(5);

    // The shortest the lake allows, so that even a 2-minute run closes reward epochs while stages are being killed.
    private static readonly TimeSpan EpochLength = TimeSpan.FromMinutes(1);

    public static async Task<int> RunAsync(IConfiguration configuration, ChaosOptions options, CancellationToken cancellation)
    {
        using var loggerFactory = LoggerFactory.Create(logging => logging.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning));
        var logger = loggerFactory.CreateLogger("chaos");
        var serverOptions = PipelineConfiguration.DevServers(configuration);
        if (!string.IsNullOrWhiteSpace(serverOptions.Postgres.ConnectionString) || !string.IsNullOrWhiteSpace(serverOptions.Kafka.BootstrapServers))
        {
            AnsiConsole.MarkupLine("[red]depin chaos restarts the PostgreSQL and brokers it starts itself:[/] leave PIPELINE_POSTGRES / PIPELINE_KAFKA (--postgres / --kafka) unset.");
            return 2;
        }
        // A folder of its own, fresh each run, so the ledger of this run is all the store holds.
        var data = Path.Combine(serverOptions.DataDirectory, "chaos");
        var postgresDirectory = Path.Combine(data, "postgres");
        var postgres = new LocalPostgres(serverOptions.Postgres, postgresDirectory, logger);
        await postgres.StopIfRunningAsync(cancellation);
        if (Directory.Exists(data)) Directory.Delete(data, recursive: true);
        Directory.CreateDirectory(Path.Combine(data, "logs"));

        var report = new ChaosReport { Duration = options.Duration, Seed = options.Seed };
        await AnsiConsole.Status().StartAsync("Starting PostgreSQL, Kafka and the chain…", _ => postgres.StartAsync(cancellation));
        try
        {
            serverOptions.DataDirectory = data;
            serverOptions.WithPostgres = false;
            serverOptions.WithChain = true;
            await using var servers = await DevServers.StartAsync(serverOptions, logger, cancellation);
            var endpoints = PipelineConfiguration.Endpoints(configuration);
            var kafka = new KafkaOptions { BootstrapServers = servers.KafkaBootstrapServers, Embedded = true };
            var stages = Stages(endpoints, data, postgres.ConnectionString, servers);

            using var stopStages = new CancellationTokenSource();
            var supervisors = stages.Select(s => s.SuperviseAsync(stopStages.Token)).ToList();
            try
            {
                using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
                await AnsiConsole.Status().StartAsync($"Starting {stages.Count} stage processes…", _ => Task.WhenAll(stages.Select(s => s.WaitHealthyAsync(http, StartPatience, cancellation))));

                var fleet = new Simulation(new SimulatorOptions
                {
                    Name = "chaos",
                    Seed = options.Seed,
                    Vehicles = options.Vehicles,
                    Stations = options.Stations,
                    Rate = options.Rate,
                    Duration = options.Duration,
                    Transport = TransportMode.Both,
                    Misbehave = Misbehaviour.All,
                    ApiUrl = endpoints.ApiUrl,
                    IngestUrl = endpoints.IngestUrl,
                    MqttHost = endpoints.ListenAddress,
                    MqttPort = endpoints.MqttPort,
                    StateDirectory = Path.Combine(data, "simulator"),
                    ShowProgress = false,
                }, TimeProvider.System);
                var fleetEnd = DateTime.UtcNow + options.Duration;
                var fleetRun = fleet.RunAsync(cancellation);
                // Faults begin once the devices are registered: the ledger holds readings, and a registration refused
                // mid-outage would only end the run early.
                await AnsiConsole.Status().StartAsync("Registering the fleet…", async _ =>
                {
                    while (fleet.Stats.Registered < options.Vehicles + options.Stations && !fleetRun.IsCompleted) await Task.Delay(100, cancellation);
                });
                if (fleetRun.IsFaulted) await fleetRun;
                var faults = new Faults(new Random(options.Seed), stages, postgres, postgresDirectory, servers.EmbeddedKafka!, report);
                var chaos = faults.RunAsync(fleetEnd, cancellation);
                await ShowProgressAsync(Task.WhenAll(fleetRun, chaos), fleet.Stats, report, fleetEnd);
                await chaos;
                var run = await fleetRun;
                report.UnexpectedExits = stages.ToDictionary(s => s.Name, s => s.UnexpectedExits);

                var checks = new ChaosChecks(configuration, data, postgres.ConnectionString, kafka, EpochLength, report);
                try
                {
                    await AnsiConsole.Status().StartAsync("Draining: every stage up, the processors at the end of the topic, the lake at the store's head…", async _ =>
                    {
                        await Task.WhenAll(stages.Select(s => s.WaitHealthyAsync(http, StartPatience, cancellation)));
                        await checks.WaitForDrainAsync(cancellation);
                    });
                }
                catch (TimeoutException e)
                {
                    report.Checks.Add(new("Stages drained", false, e.Message));
                }
                await stopStages.CancelAsync();
                await Task.WhenAll(supervisors);
                if (report.Checks.Count == 0)
                    await AnsiConsole.Status().StartAsync("Checking the store, the dead letters and the lake against the ledger…", _ => checks.RunAsync(run.Ledger, cancellation));
            }
            finally
            {
                await stopStages.CancelAsync();
                await Task.WhenAll(supervisors);
            }
        }
        finally
        {
            await postgres.StopAsync();
        }
        AnsiConsole.Write(report.Table());
        if (options.ReportFile is { } file) report.WriteJson(file);
        AnsiConsole.MarkupLineInterpolated($"Stage logs: [blue]{Path.Combine(data, "logs")}[/]");
        AnsiConsole.MarkupLine(report.Passed ? "[green]Every check held.[/]" : "[red]A check failed; the table names what differed.[/]");
        return report.Passed ? 0 : 1;
    }

    /// <summary>ingest, two stream processors, the projector, the rewards stage and the API, each with its own ports and log.</summary>
    private static List<StageProcess> Stages(EndpointsOptions endpoints, string data, string postgres, DevServers servers)
    {
        var shared = new Dictionary<string, string>
        {
            ["PIPELINE_DATA"] = data,
            ["PIPELINE_POSTGRES"] = postgres,
            ["PIPELINE_KAFKA"] = servers.KafkaBootstrapServers!,
            ["PIPELINE_Kafka__Embedded"] = "true",
            ["PIPELINE_CHAIN"] = servers.ChainRpcUrl!,
            ["PIPELINE_LISTEN"] = endpoints.ListenAddress,
            ["PIPELINE_API_PORT"] = Port(endpoints.ApiPort),
            ["PIPELINE_INGEST_PORT"] = Port(endpoints.IngestPort),
            ["PIPELINE_MQTT_PORT"] = Port(endpoints.MqttPort),
            ["PIPELINE_Lake__EpochLength"] = EpochLength.ToString("c", CultureInfo.InvariantCulture),
        };
        // Epochs close 10 s after their end, from the one this run starts in (the fleet's old readings would otherwise
        // send the stage back to close hours of empty epochs); the chain is the one this process started.
        var rewards = new Dictionary<string, string>
        {
            ["PIPELINE_Rewards__Grace"] = "00:00:10",
            ["PIPELINE_Rewards__PollInterval"] = "00:00:01",
            ["PIPELINE_Rewards__FirstEpoch"] = (DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / (long)EpochLength.TotalMilliseconds).ToString(CultureInfo.InvariantCulture),
            ["PIPELINE_Chain__Local"] = "true",
        };
        var nextStatusPort = endpoints.StatusPort;
        StageProcess Stage(string name, string stage, string? healthUrl = null, Dictionary<string, string>? own = null)
        {
            var environment = new Dictionary<string, string>(shared);
            foreach (var (key, value) in own ?? []) environment[key] = value;
            if (healthUrl is null)
            {
                // Status port 0 ("any free one") still has to be known here, to ask the stage for its health.
                var statusPort = endpoints.StatusPort == 0 ? FreePort() : nextStatusPort++;
                environment["PIPELINE_STATUS_PORT"] = Port(statusPort);
                healthUrl = $"http://{endpoints.ListenAddress}:{statusPort}";
            }
            return new StageProcess(name, stage, environment, healthUrl, Path.Combine(data, "logs", name + ".log"));
        }
        return
        [
            Stage("api", "api", endpoints.ApiUrl),
            Stage("ingest", "ingest", endpoints.IngestUrl),
            Stage("streams-1", "streams"),
            Stage("streams-2", "streams"),
            Stage("projections", "projections"),
            Stage("rewards", "rewards-stage", own: rewards),
        ];
    }

    private static string Port(int port) => port.ToString(CultureInfo.InvariantCulture);

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>A live table on a terminal, a line every 10 s when piped, until the fleet and the faults are done.</summary>
    private static async Task ShowProgressAsync(Task run, SimulationStats fleet, ChaosReport report, DateTime end)
    {
        string Line() => string.Create(CultureInfo.InvariantCulture,
            $"{Left(end - DateTime.UtcNow)} · kills {report.TotalKills} · PostgreSQL restarts {report.PostgresRestarts} · broker outages {report.BrokerOutages} · readings sent {fleet.Sent:N0}, acknowledged {fleet.Acknowledged:N0}, retried {fleet.Retried:N0}");
        if (Console.IsOutputRedirected)
        {
            while (!run.IsCompleted)
            {
                await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(10)));
                Console.WriteLine(Line());
            }
            return;
        }
        await AnsiConsole.Live(new Markup("")).StartAsync(async live =>
        {
            while (!run.IsCompleted)
            {
                live.UpdateTarget(new Markup(Markup.Escape(Line())));
                await Task.WhenAny(run, Task.Delay(TimeSpan.FromMilliseconds(500)));
            }
            live.UpdateTarget(new Markup(Markup.Escape(Line())));
        });
    }

    private static string Left(TimeSpan left) => left > TimeSpan.Zero ? left.ToString(@"mm\:ss", CultureInfo.InvariantCulture) + " left" : "time up, the fleet sends what it still holds";
}
