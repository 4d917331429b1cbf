using System.CommandLine;
using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Cli.Hosting;
using Pipeline.Infra.Development;

namespace Pipeline.Cli.Commands;

/// <summary>`depin reset`: stops the local PostgreSQL cluster and removes the data folder.</summary>
public static class ResetCommand
{
    public static Command Create()
    {
        var arguments = new StackArguments();
        var command = new Command("reset", "Stop the local PostgreSQL cluster and delete the data folder (.data): every event, the lake and the keys.");
        arguments.AddTo(command);
        command.SetAction(async (result, cancellation) =>
        {
            var options = PipelineConfiguration.DevServers(PipelineConfiguration.Build(arguments.Values(result)));
            if (!Directory.Exists(options.DataDirectory))
            {
                Console.WriteLine($"Nothing to reset: {options.DataDirectory} does not exist.");
                return 0;
            }
            using (DataFolderLock.Acquire(options.DataDirectory, _ => "stop it before resetting (Ctrl-C in its terminal); nothing was deleted"))
            {
                var local = new LocalPostgres(options.Postgres, Path.Combine(options.DataDirectory, "postgres"), NullLogger.Instance);
                await local.StopIfRunningAsync(cancellation);
                Directory.Delete(options.DataDirectory, recursive: true);
            }
            Console.WriteLine($"Removed {options.DataDirectory}.");
            return 0;
        });
        return command;
    }
}
