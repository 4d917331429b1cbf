using System.CommandLine;
using Pipeline.Cli.Commands;

var root = new RootCommand("depin — the DePIN telemetry pipeline: ingest, validate, project, reward, sell.")
{
    UpCommand.Create(),
    StageCommands.Ingest(),
    StageCommands.Streams(),
    StageCommands.Projections(),
    LakeCommand.Create(),
    SimulateCommand.Create(),
    ResetCommand.Create(),
};
// Ctrl-C cancels the command and gives it time to finish: the simulator saves its sequence numbers, up stops PostgreSQL.
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(30) });
