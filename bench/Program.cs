using Pipeline.Bench;
using Spectre.Console;

var benchmarks = new Dictionary<string, (string Description, Action<TimeSpan> Run)>
{
    ["recover"] = ("Signer recovery: native libsecp256k1 vs managed BouncyCastle", RecoveryBench.Run),
};

var name = args.FirstOrDefault();
var seconds = args.Length > 1 && int.TryParse(args[1], out var s) ? s : 3;
if (name is null || !benchmarks.TryGetValue(name, out var benchmark))
{
    AnsiConsole.MarkupLine("Usage: ./depin bench <name> [[seconds per measurement]]");
    foreach (var (key, value) in benchmarks) AnsiConsole.MarkupLineInterpolated($"  [blue]{key}[/]  {value.Description}");
    return name is null ? 0 : 1;
}
AnsiConsole.MarkupLineInterpolated($"[bold]{benchmark.Description}[/] ({seconds} s per measurement)");
benchmark.Run(TimeSpan.FromSeconds(seconds));
return 0;
