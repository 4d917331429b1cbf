using System.CommandLine;

namespace Pipeline.Cli.Commands;

/// <summary>
/// `test` and `bench` run through the ./depin script, which sets up and builds first; they are listed here so that
/// `./depin --help` shows every command, and say where to run them when called on the binary itself.
/// </summary>
public static class ScriptCommands
{
    public static Command Test()
    {
        var filter = new Argument<string>("filter") { Arity = ArgumentArity.ZeroOrOne, Description = "A dotnet test filter, e.g. \"Category!=Integration\" or \"FullyQualifiedName~Registry\"." };
        var command = new Command("test", "Run every test, unit and integration (or those the filter selects); the last line is \"N passed, N failed\". Through ./depin only.") { filter };
        command.SetAction(_ => ThroughScript("./depin test [filter]"));
        return command;
    }

    public static Command Bench()
    {
        var name = new Argument<string>("name") { Arity = ArgumentArity.ZeroOrOne, Description = "recover, streams, lake or ingest; none lists them." };
        var seconds = new Argument<int>("seconds") { Arity = ArgumentArity.ZeroOrOne, Description = "Seconds per measurement (default 3)." };
        var command = new Command("bench", "Run a benchmark; each prints its ratio against a baseline measured in the same run. Through ./depin only.") { name, seconds };
        command.SetAction(_ => ThroughScript("./depin bench <name> [seconds]"));
        return command;
    }

    private static int ThroughScript(string usage)
    {
        Console.Error.WriteLine($"error: this command runs through the repository's script, which builds first: {usage}");
        return 2;
    }
}
