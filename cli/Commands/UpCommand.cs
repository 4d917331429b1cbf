using System.CommandLine;
using System.Net.Sockets;
using Pipeline.Cli.Hosting;
using Pipeline.Simulator;
using Pipeline.Infra.Development;
using Pipeline.Infra.Hosting;
using Pipeline.Marketplace.Accounts;
using Spectre.Console;

namespace Pipeline.Cli.Commands;

/// <summary>`depin up`: the whole pipeline in one process, on a local PostgreSQL and an embedded broker by default.</summary>
public static class UpCommand
{
    public static Command Create()
    {
        var arguments = new StackArguments();
        var vehicles = new Option<int>("--fleet-vehicles") { Description = "Vehicles of the simulated fleet that drives while the pipeline runs.", DefaultValueFactory = _ => 20 };
        var stations = new Option<int>("--fleet-stations") { Description = "Weather stations of the simulated fleet.", DefaultValueFactory = _ => 10 };
        var noFleet = new Option<bool>("--no-fleet") { Description = "Run the pipeline without the simulated fleet." };
        var command = new Command("up", "Run the whole pipeline on this machine: PostgreSQL, Kafka, the stages, the API and a simulated fleet.") { vehicles, stations, noFleet };
        arguments.AddTo(command);
        command.SetAction((result, cancellation) =>
        {
            // A fleet of its own, never one of depin simulate's seeds: the two would sign as the same devices.
            var fleet = result.GetValue(noFleet) ? null : new SimulatorOptions { Name = "up", Vehicles = result.GetValue(vehicles), Stations = result.GetValue(stations), Duration = TimeSpan.FromDays(3650), Transport = TransportMode.Both, ShowProgress = false, KeepLedger = false };
            return RunAsync(PipelineConfiguration.Build(arguments.Values(result)), Roles.All, cancellation, fleet);
        });
        return command;
    }

    public static async Task<int> RunAsync(IConfiguration configuration, Roles roles, CancellationToken cancellation, SimulatorOptions? fleet = null)
    {
        using var loggerFactory = LoggerFactory.Create(logging => ServiceDefaults.ConfigureLogging(logging, configuration));
        var logger = loggerFactory.CreateLogger("depin");
        var serverOptions = PipelineConfiguration.DevServers(configuration);
        // The whole pipeline owns the data folder, the embedded broker (which it publishes) and the local cluster it
        // starts; a single stage joins a running one. A second owner is refused before it touches anything.
        using var folder = roles == Roles.All
            ? DataFolderLock.Acquire(serverOptions.DataDirectory, _ => "stop it first (Ctrl-C in its terminal), or run this one with its own --data folder and ports")
            : null;
        serverOptions.PublishBootstrapFile = roles == Roles.All;
        serverOptions.JoinPublishedBroker = roles != Roles.All;
        serverOptions.WithPostgres = PipelineHost.NeedsEventStore(roles);
        serverOptions.WithChain = PipelineHost.NeedsChain(roles);
        serverOptions.KeepChainState = roles == Roles.All;
        // A chain already listening on the port is used: a running up's, one's own, or the anvil a killed up left behind.
        serverOptions.JoinRunningChain = true;
        serverOptions.AdoptRunningPostgres = folder is not null && DataFolderLock.LeftPostgresRunning(folder);

        // The local servers start only what configuration does not name, and fill in where they are.
        DevServers servers;
        try
        {
            servers = await AnsiConsole.Status().StartAsync("Starting PostgreSQL and Kafka…", _ => DevServers.StartAsync(serverOptions, logger, cancellation));
            if (folder is not null) DataFolderLock.NoteStarted(folder, servers);
        }
        catch (InvalidOperationException e)
        {
            AnsiConsole.MarkupLineInterpolated($"[red]Cannot start:[/] {e.Message}");
            return 2;
        }

        await using (servers)
        {
            await using var app = PipelineHost.Build(PipelineConfiguration.With(configuration, servers), roles);
            // Made before the API answers, so the key works (and `depin operator-key --new` finds its folder) as soon as
            // /health does; printed below, with the rest.
            var operatorKey = roles.HasFlag(Roles.Api) ? app.Services.GetRequiredService<OperatorKey>() : null;
            var newOperatorKey = operatorKey?.CreateIfMissing();
            try
            {
                await app.StartAsync(cancellation);
            }
            catch (Confluent.Kafka.KafkaException e)
            {
                AnsiConsole.MarkupLineInterpolated($"[red]Cannot use Kafka at {servers.KafkaBootstrapServers}:[/] {e.Message}. Check PIPELINE_KAFKA.");
                await StopStartedAsync(app);
                return 2;
            }
            catch (IOException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.AddressAlreadyInUse } || e.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
                AnsiConsole.MarkupLineInterpolated($"[red]Cannot listen:[/] {e.Message}. Another program holds the port; stop it or move ours with {PortOptions(roles)}.");
                await StopStartedAsync(app);
                return 2;
            }
            catch (InvalidOperationException e)
            {
                AnsiConsole.MarkupLineInterpolated($"[red]Cannot start:[/] {e.Message}");
                await StopStartedAsync(app);
                return 2;
            }
            var endpoints = PipelineConfiguration.Endpoints(configuration);
            var chain = PipelineHost.NeedsChain(roles) ? await DescribeChainAsync(app, servers, cancellation) : null;
            PrintWhereEverythingIs(servers, endpoints, roles, HealthUrl(app, endpoints, roles), chain);
            if (operatorKey is not null) PrintOperatorKey(operatorKey, newOperatorKey);
            using var stopFleet = new CancellationTokenSource();
            var fleetRun = fleet is null ? Task.CompletedTask : RunFleetAsync(fleet with
            {
                ApiUrl = endpoints.ApiUrl,
                IngestUrl = endpoints.IngestUrl,
                MqttHost = endpoints.ListenAddress,
                MqttPort = endpoints.MqttPort,
                StateDirectory = Path.Combine(servers.DataDirectory, "simulator"),
            }, logger, stopFleet.Token);
            // The fleet stops sending as soon as the host starts stopping, before the endpoints it sends to go away.
            using (app.Lifetime.ApplicationStopping.Register(stopFleet.Cancel))
            {
                await app.WaitForShutdownAsync(cancellation);
            }
            await stopFleet.CancelAsync();
            await fleetRun;
            // A stage's loop that failed stops the host (BackgroundServiceExceptionBehavior.StopHost): that is a failure
            // of the process, for its supervisor to see, not a stop.
            if (FailedStage(app) is { } failed)
            {
                AnsiConsole.MarkupLineInterpolated($"[red]Stopped because {failed.GetType().Name} failed:[/] {failed.ExecuteTask!.Exception!.GetBaseException().Message}");
                return 1;
            }
        }
        AnsiConsole.MarkupLine("[grey]Stopped.[/]");
        return 0;
    }

    private static BackgroundService? FailedStage(WebApplication app) =>
        app.Services.GetServices<IHostedService>().OfType<BackgroundService>().FirstOrDefault(s => s.ExecuteTask is { IsFaulted: true });

    /// <summary>
    /// Stops what started before start-up failed (the MQTT listener, the stages' loops), so that disposing the app
    /// is an orderly stop rather than background work cancelled under its feet.
    /// </summary>
    private static async Task StopStartedAsync(WebApplication app)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await app.StopAsync(timeout.Token);
    }

    /// <summary>The options that move the HTTP ports a process with these roles binds.</summary>
    private static string PortOptions(Roles roles)
    {
        var options = new List<string>();
        if (roles.HasFlag(Roles.Api)) options.Add("--api-port (PIPELINE_API_PORT)");
        if (roles.HasFlag(Roles.Ingest)) options.Add("--ingest-port (PIPELINE_INGEST_PORT)");
        if (options.Count == 0) options.Add("--status-port (PIPELINE_STATUS_PORT)");
        return string.Join(" / ", options);
    }

    /// <summary>Where /health and /metrics answer: the API or ingest port, else the status port as bound (0 means one the system chose).</summary>
    private static string HealthUrl(WebApplication app, EndpointsOptions endpoints, Roles roles) =>
        roles.HasFlag(Roles.Api) ? endpoints.ApiUrl
        : roles.HasFlag(Roles.Ingest) ? endpoints.IngestUrl
        : app.Urls.FirstOrDefault() ?? $"http://{endpoints.ListenAddress}:{endpoints.StatusPort}";

    /// <summary>The demo fleet: drives until the host stops, with a status line now and then.</summary>
    private static async Task RunFleetAsync(SimulatorOptions options, ILogger logger, CancellationToken cancellation)
    {
        var simulation = new Simulation(options, TimeProvider.System);
        var run = simulation.RunAsync(cancellation);
        while (!run.IsCompleted)
        {
            await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(15), CancellationToken.None));
            var stats = simulation.Stats;
            logger.LogInformation("Fleet: {Registered} devices, {Sent} readings sent, {Acknowledged} acknowledged, {Refused} refused at the edge, {Retried} retried",
                stats.Registered, stats.Sent, stats.Acknowledged, stats.Refused, stats.Retried);
        }
        try
        {
            await run;
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            // Stopped before it was under way, e.g. Ctrl-C while it was still registering its devices.
        }
        catch (Exception e)
        {
            // The demo fleet is a guest of the host: whatever stops it is logged, and never takes the pipeline down.
            logger.LogError("The simulated fleet stopped: {Message}", e.Message);
        }
    }

    /// <summary>A path as people type it here: relative to the current folder when inside it.</summary>
    private static string Shown(string path)
    {
        var relative = Path.GetRelativePath(Environment.CurrentDirectory, path);
        return relative.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(relative) ? path : relative;
    }

    /// <summary>The connection string as shown to people: any password replaced by ***.</summary>
    private static string WithoutPassword(string connectionString)
    {
        var builder = new Npgsql.NpgsqlConnectionStringBuilder(connectionString);
        if (!string.IsNullOrEmpty(builder.Password)) builder.Password = "***";
        return builder.ConnectionString;
    }

    /// <summary>The operator key exists from the first start on; it is shown that once, and only its hash is kept.</summary>
    private static void PrintOperatorKey(OperatorKey operatorKey, string? key)
    {
        if (key is null)
        {
            AnsiConsole.MarkupLineInterpolated($"[grey]Marketplace operator key: as printed at the first start (its hash is in {operatorKey.Path}; delete that file and restart for a new one).[/]");
            return;
        }
        AnsiConsole.MarkupLineInterpolated($"Marketplace operator key (shown once, keep it): [yellow]{key}[/]");
    }

    /// <summary>The chain's line: where it is and the contracts, once deployed (or found) there; a chain that does not answer yet is said so.</summary>
    private static async Task<string> DescribeChainAsync(WebApplication app, DevServers servers, CancellationToken cancellation)
    {
        var rewardsChain = app.Services.GetRequiredService<Pipeline.Rewards.Stage.RewardsChain>();
        var where = (rewardsChain.Options.RpcUrl ?? "") + (servers.Anvil is not null ? $" (anvil; kept in {Shown(Path.Combine(servers.DataDirectory, "chain"))})" : "");
        try
        {
            using var patience = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
            patience.CancelAfter(TimeSpan.FromSeconds(30));
            var context = await AnsiConsole.Status().StartAsync("Deploying the contracts…", _ => rewardsChain.GetAsync(patience.Token));
            return $"{where}\nchain {context.ChainId} · token {context.Token} · distributor {context.Distributor} · payments {context.Payments}";
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            // Stopped while the contracts were being deployed (a block a second): the stop goes on in order, not as a crash.
            return $"{where}\nstopping before the contracts were known";
        }
        catch (Exception e)
        {
            rewardsChain.Reset();
            return $"{where}\nnot ready: {e.Message.Split('\n')[0]} (the rewards stage keeps trying)";
        }
    }

    private static void PrintWhereEverythingIs(DevServers servers, EndpointsOptions endpoints, Roles roles, string healthUrl, string? chain)
    {
        var table = new Table().Border(TableBorder.Rounded).AddColumn("What").AddColumn("Where");
        if (roles.HasFlag(Roles.Api))
        {
            table.AddRow("Web app", $"{endpoints.ApiUrl}/");
            table.AddRow("Registry and marketplace API", endpoints.ApiUrl);
            table.AddRow("API docs (OpenAPI)", $"{endpoints.ApiUrl}/docs  ·  {endpoints.ApiUrl}/openapi/v1.json");
        }
        if (roles.HasFlag(Roles.Ingest))
        {
            table.AddRow("Ingest (HTTP)", $"{endpoints.IngestUrl}/v1/readings");
            table.AddRow("Ingest (MQTT)", $"mqtt://{endpoints.MqttAddress}  topic devices/{{address}}/readings");
        }
        table.AddRow("Health / metrics", $"{healthUrl}/health  ·  {healthUrl}/metrics");
        if (servers.PostgresConnectionString is { } postgres) table.AddRow("PostgreSQL", Markup.Escape(WithoutPassword(postgres)) + (servers.UsesLocalPostgres ? Markup.Escape($" (local cluster; password in {Shown(servers.LocalPostgresPasswordFile!)})") : ""));
        table.AddRow("Kafka", Markup.Escape(servers.KafkaBootstrapServers ?? "") + (servers.EmbeddedKafka is not null ? Markup.Escape($" (embedded; also in {Shown(Path.Combine(servers.DataDirectory, "kafka.bootstrap"))})") : ""));
        if (chain is not null) table.AddRow("Chain (rewards)", Markup.Escape(chain));
        table.AddRow("Data folder", Markup.Escape(servers.DataDirectory));
        AnsiConsole.Write(new Panel(table).Header("[green]depin is up[/]").BorderColor(Color.Green));
        AnsiConsole.MarkupLineInterpolated($"Try: [blue]curl -s {healthUrl}/health[/]    Stop: [blue]Ctrl-C[/]");
    }
}
