using System.CommandLine;
using Pipeline.Cli.Chaos;
using Pipeline.Cli.Hosting;
using Spectre.Console;

namespace Pipeline.Cli.Commands;

/// <summary>`depin chaos`: every stage as its own process, killed and restarted at random under a misbehaving fleet, then checked against the fleet's ledger.</summary>
public static class ChaosCommand
{
    public static Command Create()
    {
        var arguments = new StackArguments();
        var duration = new Option<string>("--duration") { Description = "How long the faults go on: 2m, 10m, 1h.", DefaultValueFactory = _ => "10m" };
        var seed = new Option<int>("--seed") { Description = "Seed of the fleet and of the faults (which stage, which signal, when).", DefaultValueFactory = _ => 1 };
        var rate = new Option<double>("--rate") { Description = "Readings per second over the whole fleet.", DefaultValueFactory = _ => 20 };
        var vehicles = new Option<int>("--vehicles") { Description = "Simulated vehicles.", DefaultValueFactory = _ => 20 };
        var stations = new Option<int>("--stations") { Description = "Simulated weather stations.", DefaultValueFactory = _ => 10 };
        var report = new Option<string>("--report") { Description = "Also write the report as JSON to this file." };
        var command = new Command("chaos", "Run every stage as its own process under a simulated fleet with every misbehaviour, while stages are killed (SIGKILL, SIGTERM), PostgreSQL restarts and brokers go down; then check that no acknowledged reading was lost or duplicated, each dead letter was written once and the lake equals a rebuild. Uses <data>/chaos (fresh each run), the API, ingest, MQTT and chain ports, and status ports from --status-port up (four). Exit 0 only when every check holds.")
        {
            duration, seed, rate, vehicles, stations, report,
        };
        arguments.AddTo(command);
        command.SetAction((result, cancellation) =>
        {
            ChaosOptions options;
            try
            {
                options = new ChaosOptions(SimulateCommand.ParseDuration(result.GetValue(duration)!), result.GetValue(seed), result.GetValue(rate),
                    result.GetValue(vehicles), result.GetValue(stations), result.GetValue(report) is { } file ? Path.GetFullPath(file) : null);
            }
            catch (FormatException e)
            {
                AnsiConsole.MarkupLineInterpolated($"[red]{e.Message}[/]");
                return Task.FromResult(2);
            }
            return ChaosRun.RunAsync(PipelineConfiguration.Build(arguments.Values(result)), options, cancellation);
        });
        return command;
    }
}
