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
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
