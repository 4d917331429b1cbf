using System.CommandLine;
using Pipeline.Cli.Hosting;

namespace Pipeline.Cli.Commands;

/// <summary>One stage alone in its own process, against the brokers and database in configuration.</summary>
public static class StageCommands
{
    public static Command Api() => Create("api", "Run only the API (registry and marketplace) on --api-port (PIPELINE_API_PORT, default 5080); it prints the marketplace's operator key the first time.", Roles.Api);

    public static Command Ingest() => Create("ingest", "Run only the ingest edge (HTTP and MQTT into Kafka).", Roles.Ingest);

    public static Command Projections() => Create("projections", "Run only the lake projector (events into Parquet; one leads at a time, others wait). Health and metrics on --status-port (PIPELINE_STATUS_PORT, default 5082).", Roles.Projections);

    public static Command Streams() => Create("streams", "Run only a stream processor: one more member of the consumer group (health and metrics on --status-port, PIPELINE_STATUS_PORT, default 5082; give each process on one machine its own).", Roles.Streams);

    public static Command Rewards() => Create("rewards-stage", "Run only the rewards stage: closes each epoch once the lake has passed its end plus Rewards:Grace, writes its reward file, publishes its root on the chain (PIPELINE_CHAIN, or a local anvil on --chain-port). One leads at a time, others wait. Health and metrics on --status-port.", Roles.Rewards);

    private static Command Create(string name, string description, Roles roles)
    {
        var arguments = new StackArguments();
        var command = new Command(name, description + " Without --kafka it joins the broker a running `depin up` published, else starts its own.");
        arguments.AddTo(command);
        command.SetAction((result, cancellation) => UpCommand.RunAsync(PipelineConfiguration.Build(arguments.Values(result)), roles, cancellation));
        return command;
    }
}
