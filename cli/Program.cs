using System.CommandLine;
using System.CommandLine.Invocation;
using Pipeline.Cli.Commands;

var root = new RootCommand("depin — the DePIN telemetry pipeline: ingest signed readings, validate them into an event store, project them into a Parquet lake.")
{
    UpCommand.Create(),
    StageCommands.Api(),
    StageCommands.Ingest(),
    StageCommands.Streams(),
    StageCommands.Projections(),
    StageCommands.Rewards(),
    LakeCommand.Create(),
    MarketCommands.Query(),
    MarketCommands.Export(),
    RewardsCommands.Create(),
    OperatorKeyCommand.Create(),
    SimulateCommand.Create(),
    ChaosCommand.Create(),
    ResetCommand.Create(),
    ScriptCommands.Test(),
    ScriptCommands.Bench(),
};
var parse = root.Parse(args);
if (parse.Action is ParseErrorAction) return CommandLineErrors.ReportParseErrors(parse);
try
{
    // Ctrl-C cancels the command and gives it time to finish: the simulator saves its sequence numbers, up stops PostgreSQL.
    return await parse.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(30), EnableDefaultExceptionHandler = false });
}
catch (Exception e) when (CommandLineErrors.IsUserError(e))
{
    return CommandLineErrors.Report(e);
}
