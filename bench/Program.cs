using Pipeline.Bench;
using Spectre.Console;

// Ctrl-C and SIGTERM end every bench's waits; what it started is stopped on the way out.
using var interruption = new Interruption();
try
{
    return await RunAsync(args, interruption.Token);
}
catch (Exception) when (interruption.Token.IsCancellationRequested)
{
    AnsiConsole.MarkupLineInterpolated($"[yellow]Stopped by {interruption.Signal}[/]: no figures; the servers and processes this bench started are stopped.");
    return interruption.ExitCode;
}

static async Task<int> RunAsync(string[] args, CancellationToken stop)
{
    if (args is ["e2e", .. var e2eArguments]) return await E2eBench.RunAsync(e2eArguments, stop);
    if (args is ["lake-soak", .. var soakArguments]) return await LakeSoak.RunAsync(soakArguments, stop);
    if (args is ["ingest-load", var url, var batchFile, var loadSeconds]) return await IngestBench.LoadAsync(url, batchFile, TimeSpan.FromSeconds(double.Parse(loadSeconds, System.Globalization.CultureInfo.InvariantCulture)));

    var benchmarks = new Dictionary<string, (string Description, Func<TimeSpan, CancellationToken, Task> Run)>
    {
        ["recover"] = ("Signer recovery: native libsecp256k1 vs managed BouncyCastle", (d, _) => { RecoveryBench.Run(d); return Task.CompletedTask; }),
        ["ingest"] = ("HTTP ingest from a separate load process vs raw Confluent.Kafka produce of the same bytes", IngestBench.RunAsync),
        ["lake"] = ("Events into the Parquet lake, and an aggregate over it vs DuckDB on its own Parquet file", LakeBench.RunAsync),
        ["streams"] = ("Processors into PostgreSQL vs raw signature recovery and raw COPY of the same rows", StreamsBench.RunAsync),
        ["market"] = ("Buyer queries and an export through the marketplace API vs the same SQL and COPY directly in DuckDB", MarketBench.RunAsync),
        ["fuzz"] = ("A million hostile bodies per parser, then 10,000 HTTP requests and 10,000 MQTT publishes to a running host: counts of every outcome", (d, _) => FuzzBench.RunAsync(d)),
        ["web"] = ("First render of each web page in chromium with the default fleet running vs the catalog's raw JSON", WebBench.RunAsync),
        ["e2e"] = ("Every stage its own process and the fleet simulator in another, at rising rates, then a memory soak: " + E2eBench.Usage, (_, s) => E2eBench.RunAsync([], s)),
        ["lake-soak"] = ("The lake projector alone as its own process under a steady stream of events, its memory sampled: " + LakeSoak.Usage, (_, s) => LakeSoak.RunAsync([], s)),
        ["directory"] = ("The processors' device directory with 1,000,000 devices vs a plain Dictionary of the address strings", (d, _) => DirectoryBench.RunAsync(d)),
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
    await benchmark.Run(TimeSpan.FromSeconds(seconds), stop);
    return 0;
}
