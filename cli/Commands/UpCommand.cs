using System.CommandLine;
using System.Net.Sockets;
using Pipeline.Cli.Hosting;
using Pipeline.Infra.Stack;
using Spectre.Console;

namespace Pipeline.Cli.Commands;

/// <summary>`depin up`: the whole pipeline in one process, on a local PostgreSQL and an embedded broker by default.</summary>
public static class UpCommand
{
    public static Command Create()
    {
        var arguments = new StackArguments();
        var command = new Command("up", "Run the whole pipeline on this machine: PostgreSQL, Kafka, the stages and the API.");
        arguments.AddTo(command);
        command.SetAction((result, cancellation) => RunAsync(PipelineConfiguration.Build(arguments.Values(result)), Roles.All, cancellation));
        return command;
    }

    public static async Task<int> RunAsync(IConfiguration configuration, Roles roles, CancellationToken cancellation)
    {
        using var loggerFactory = LoggerFactory.Create(logging => PipelineHost.ConfigureLogging(logging, configuration));
        var logger = loggerFactory.CreateLogger("depin");
        var stackOptions = PipelineConfiguration.StackOptions(configuration);
        // The whole pipeline owns the embedded broker and publishes it; a single stage joins one that is running.
        stackOptions.PublishBootstrapFile = roles == Roles.All;
        stackOptions.JoinPublishedBroker = roles != Roles.All;
        stackOptions.WithEventStore = roles != Roles.Ingest;

        DevStack stack;
        try
        {
            stack = await AnsiConsole.Status().StartAsync("Starting PostgreSQL and Kafka…", _ => DevStack.StartAsync(stackOptions, logger, cancellation));
        }
        catch (InvalidOperationException e)
        {
            AnsiConsole.MarkupLineInterpolated($"[red]Cannot start:[/] {e.Message}");
            return 2;
        }

        await using (stack)
        {
            var app = PipelineHost.Build(configuration, stack, roles);
            try
            {
                await app.StartAsync(cancellation);
            }
            catch (IOException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.AddressAlreadyInUse } || e.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
                AnsiConsole.MarkupLineInterpolated($"[red]Cannot listen:[/] {e.Message}. Another program holds the port; stop it or move ours with --api-port / --ingest-port (PIPELINE_API_PORT / PIPELINE_INGEST_PORT).");
                return 2;
            }
            catch (InvalidOperationException e)
            {
                AnsiConsole.MarkupLineInterpolated($"[red]Cannot start:[/] {e.Message}");
                return 2;
            }
            PrintWhereEverythingIs(stack, PipelineConfiguration.Endpoints(configuration), roles);
            await app.WaitForShutdownAsync(CancellationToken.None);
            await app.DisposeAsync();
        }
        AnsiConsole.MarkupLine("[grey]Stopped.[/]");
        return 0;
    }

    private static void PrintWhereEverythingIs(DevStack stack, EndpointsOptions endpoints, Roles roles)
    {
        var table = new Table().Border(TableBorder.Rounded).AddColumn("What").AddColumn("Where");
        if (roles.HasFlag(Roles.Api))
        {
            table.AddRow("Marketplace and registry API", endpoints.ApiUrl);
            table.AddRow("Health / metrics", $"{endpoints.ApiUrl}/health  ·  {endpoints.ApiUrl}/metrics");
        }
        if (roles.HasFlag(Roles.Api)) table.AddRow("API docs (OpenAPI)", $"{endpoints.ApiUrl}/docs  ·  {endpoints.ApiUrl}/openapi/v1.json");
        if (roles.HasFlag(Roles.Ingest))
        {
            table.AddRow("Ingest (HTTP)", $"{endpoints.IngestUrl}/v1/readings");
            table.AddRow("Ingest (MQTT)", $"mqtt://{endpoints.MqttAddress}  topic devices/{{address}}/readings");
        }
        if (stack.HasEventStore) table.AddRow("PostgreSQL", Markup.Escape(stack.PostgresConnectionString) + (stack.UsesLocalPostgres ? " (local cluster)" : ""));
        table.AddRow("Kafka", Markup.Escape(stack.KafkaBootstrapServers) + (stack.EmbeddedKafka is not null ? " (embedded; also in .data/kafka.bootstrap)" : ""));
        table.AddRow("Data folder", Markup.Escape(stack.DataDirectory));
        AnsiConsole.Write(new Panel(table).Header("[green]depin is up[/]").BorderColor(Color.Green));
        AnsiConsole.MarkupLineInterpolated($"Try: [blue]curl -s {endpoints.ApiUrl}/health[/]    Stop: [blue]Ctrl-C[/]");
    }
}
