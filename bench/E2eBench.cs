using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using DuckDB.NET.Data;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Pipeline.Cli.Chaos;
using Pipeline.Cli.Hosting;
using Pipeline.Infra.Development;
using Pipeline.Infra.Postgres;
using Pipeline.Simulator;
using Pipeline.Tests.Support;
using Spectre.Console;

namespace Pipeline.Bench;

/// <summary>
/// The whole pipeline as in production: the infrastructure (local PostgreSQL, embedded broker, anvil) in this process,
/// every stage its own `depin` process (ingest, two stream processors, the lake projector, the API), and the fleet
/// simulator in another, at rising rates. Per step: offered and acknowledged rate, freshness from the edge's receipt
/// to the lake file being committed to the manifest, readings lost or doubled against the simulator's ledger, and the
/// CPU each stage process spent per reading (from /proc/&lt;pid&gt;/stat). Then a soak at 70 % of the highest rate
/// held, with every process's memory sampled.
/// </summary>
public static class E2eBench
{
    // At 16,000 readings/s that is 29 a second per device, under the edge's 50 per device.
    private const int Vehicles = 500;
    private const int Stations = 50;
    private const double FreshnessGoalMs = 2_000;
    private const double TargetRate = 20_000;
    private static readonly TimeSpan LakePoll = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan RssSample = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan CatchUpTimeout = TimeSpan.FromMinutes(3);

    private sealed record Settings(TimeSpan Step, IReadOnlyList<int> Rates, double SoakMinutes);

    public static string Usage => "./depin bench e2e [seconds per step, 30] [--rates 1000,2000,4000,8000,16000] [--soak <minutes>, 10; 0 skips it]";

    public static async Task<int> RunAsync(string[] args, CancellationToken stop)
    {
        if (Parse(args) is not { } settings)
        {
            AnsiConsole.MarkupLineInterpolated($"Usage: {Usage}");
            return 2;
        }
        // Piped into a log, Spectre would fit the tables to 80 columns.
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 180;
        AnsiConsole.MarkupLineInterpolated($"[bold]End to end: stages as separate processes, the fleet simulator in its own[/] ({settings.Step.TotalSeconds:N0} s per step, rates {string.Join(", ", settings.Rates)}/s, soak {settings.SoakMinutes:0.#} min)");
        await using var stack = await Stack.StartAsync(stop);
        AnsiConsole.MarkupLineInterpolated($"Stack in [blue]{stack.Folder}[/]: {string.Join(", ", stack.Stages.Select(s => $"{s.Name} (pid {s.Process.Id})"))}; load average {LoadAverage()}");

        // Registers the fleet and warms every process up; not reported.
        await AnsiConsole.Status().StartAsync($"Warm-up: registering the fleet ({Vehicles + Stations:N0} devices) and sending at 200/s…", _ => stack.RunStepAsync(200, TimeSpan.FromSeconds(45), stop));

        var idle = await AnsiConsole.Status().StartAsync("Idle CPU of each process with no load (15 s)…", _ => stack.IdleCoresAsync(TimeSpan.FromSeconds(15), stop));
        var steps = new List<StepResult>();
        foreach (var rate in settings.Rates)
        {
            var postgres = await PostgresShare.StartAsync(stack.PostgresConnectionString, stack.PostgresFolder);
            var step = await AnsiConsole.Status().StartAsync($"{rate:N0} readings/s for {settings.Step.TotalSeconds:N0} s, then waiting for the lake to hold them…", _ => stack.RunStepAsync(rate, settings.Step, stop));
            steps.Add(step);
            AnsiConsole.MarkupLine($"  {rate:N0}/s: acknowledged {step.AcknowledgedPerSecond:N0}/s, p99 freshness {step.P99Ms:N0} ms, lost {step.Lost}, doubled {step.Doubled} — {(step.Holds ? "[green]holds[/]" : "[red]does not hold[/]")}; load average {LoadAverage()}");
            await postgres.PrintAsync(step.Readings);
            // Past the freshness goal the steps go on while the stack still keeps up, for the CPU figures at higher rates.
            if (!step.KeepsUp) break;
        }
        PrintSteps(steps, idle, stack);

        var held = steps.Where(s => s.Holds).MaxBy(s => s.Target);
        if (settings.SoakMinutes > 0)
        {
            // With no step held the soak still runs, at 70 % of what the lowest step acknowledged, and says so.
            var basis = (held ?? steps[0]).AcknowledgedPerSecond;
            var rate = (int)Math.Max(50, Math.Round(basis * 0.7));
            var soak = await stack.SoakAsync(rate, TimeSpan.FromMinutes(settings.SoakMinutes), stop);
            PrintSoak(soak, rate, held is null);
        }
        return 0;
    }

    private static Settings? Parse(string[] args)
    {
        var step = TimeSpan.FromSeconds(30);
        IReadOnlyList<int> rates = [1_000, 2_000, 4_000, 8_000, 16_000];
        var soak = 10.0;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--soak" when i + 1 < args.Length && double.TryParse(args[i + 1], CultureInfo.InvariantCulture, out var minutes) && minutes >= 0:
                    soak = minutes;
                    i++;
                    break;
                case "--rates" when i + 1 < args.Length:
                    var parsed = args[i + 1].Split(',').Select(r => int.TryParse(r, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : 0).ToList();
                    if (parsed.Contains(0) || parsed.Count == 0) return null;
                    rates = parsed;
                    i++;
                    break;
                default:
                    if (!int.TryParse(args[i], CultureInfo.InvariantCulture, out var seconds) || seconds < 5) return null;
                    step = TimeSpan.FromSeconds(seconds);
                    break;
            }
        }
        return new Settings(step, rates, soak);
    }

    private static void PrintSteps(List<StepResult> steps, Dictionary<string, double> idle, Stack stack)
    {
        var cpuNames = steps[0].CpuMicrosecondsPerReading.Keys.ToList();
        // What a reading costs beyond what the process spends idle (polling, timers, GC) over the same time.
        double Marginal(StepResult step, string name) => step.CpuMicrosecondsPerReading[name] - idle[name] * step.WallSeconds * 1e6 / Math.Max(1, step.Readings);
        var table = new Table().Title("[bold]Rising rates[/]").AddColumn(new TableColumn("Offered").RightAligned()).AddColumn(new TableColumn("Sent/s").RightAligned())
            .AddColumn(new TableColumn("Acknowledged/s").RightAligned()).AddColumn(new TableColumn("Freshness p50").RightAligned()).AddColumn(new TableColumn("p99").RightAligned())
            .AddColumn(new TableColumn("Lost").RightAligned()).AddColumn(new TableColumn("Doubled").RightAligned());
        foreach (var name in cpuNames) table.AddColumn(new TableColumn($"{name} µs").RightAligned());
        table.AddColumn("Holds");
        foreach (var step in steps)
        {
            var row = new List<string>
            {
                $"{step.Target:N0}/s", $"{step.SentPerSecond:N0}", $"{step.AcknowledgedPerSecond:N0}", $"{step.P50Ms:N0} ms", $"{step.P99Ms:N0} ms",
                step.Lost == 0 ? "0" : $"[red]{step.Lost:N0}[/]", step.Doubled == 0 ? "0" : $"[red]{step.Doubled:N0}[/]",
            };
            row.AddRange(cpuNames.Select(n => $"{step.CpuMicrosecondsPerReading[n]:N0} ({Marginal(step, n):N0})"));
            row.Add(step.Holds ? "[green]yes[/]" : "[red]no[/]");
            table.AddRow(row.ToArray());
        }
        table.Caption($"Holds: lost 0, doubled 0, p99 ≤ {FreshnessGoalMs:N0} ms, acknowledged ≥ 95 % of sent. Offered is the simulator's target; sent and acknowledged are over the window of edge receipts. Freshness: edge receipt (received_at) → the bench saw the file in the lake manifest (polled every {LakePoll.TotalMilliseconds:N0} ms). µs: CPU of each stage process per reading acknowledged, over the step and its catch-up, and in brackets beyond what it spends idle; streams is both processors together; PostgreSQL is its server processes (infrastructure, not a stage).");
        AnsiConsole.Write(table);

        var held = steps.Where(s => s.Holds).MaxBy(s => s.Target);
        AnsiConsole.MarkupLine(held is null
            ? $"[red]No step held[/] (the lowest, {steps[0].Target:N0}/s, did not)."
            : $"Highest rate held: [green]{held.AcknowledgedPerSecond:N0} readings/s acknowledged[/] (offered {held.Target:N0}/s; p99 freshness {held.P99Ms:N0} ms).");
        // At the highest step that held, else the highest that kept up: low rates are mostly idle cost, so the marginal cost is what scales.
        var basis = held ?? steps.LastOrDefault(s => s.KeepsUp) ?? steps[^1];
        var cores = new Table().Title($"[bold]Cores to carry {TargetRate:N0} readings/s[/] = idle cores + marginal CPU µs per reading × {TargetRate:N0} ÷ 10⁶ (marginal cost at the {basis.Target:N0}/s step)")
            .AddColumn("Stage").AddColumn(new TableColumn("CPU µs/reading").RightAligned()).AddColumn(new TableColumn("Idle cores").RightAligned())
            .AddColumn(new TableColumn("Marginal µs/reading").RightAligned()).AddColumn(new TableColumn($"Cores at {TargetRate:N0}/s").RightAligned());
        foreach (var name in cpuNames)
            cores.AddRow(name, $"{basis.CpuMicrosecondsPerReading[name]:N1}", $"{idle[name]:N3}", $"{Marginal(basis, name):N1}", $"{idle[name] + Marginal(basis, name) * TargetRate / 1e6:N2}");
        AnsiConsole.Write(cores);
        AnsiConsole.MarkupLineInterpolated($"Machine: {Environment.ProcessorCount} cores shared by every process here and by other work; load average now {LoadAverage()}. Logs of each process are kept in {stack.Folder}/logs.");
    }

    private static void PrintSoak(SoakResult soak, int rate, bool noStepHeld)
    {
        var table = new Table().Title($"[bold]Soak: {rate:N0} readings/s for {soak.Elapsed.TotalMinutes:N1} min[/]{(noStepHeld ? " (70 % of the lowest step's acknowledged rate: no step held)" : " (70 % of the highest acknowledged rate held)")}")
            .AddColumn("Process").AddColumn(new TableColumn("RSS start").RightAligned()).AddColumn(new TableColumn("Peak").RightAligned()).AddColumn(new TableColumn("End").RightAligned())
            .AddColumn(new TableColumn("PSS start").RightAligned()).AddColumn(new TableColumn("Peak").RightAligned()).AddColumn(new TableColumn("End").RightAligned());
        static string[] Row(string name, IReadOnlyList<long> rss, IReadOnlyList<long> pss) => [name, Mb(rss[0]), Mb(rss.Max()), Mb(rss[^1]), Mb(pss[0]), Mb(pss.Max()), Mb(pss[^1])];
        foreach (var (name, samples) in soak.Memory)
            table.AddRow(Row(name, samples.Select(s => s.Rss).ToList(), samples.Select(s => s.Pss).ToList()));
        var stack = soak.Memory.Where(m => m.Key != SimulatorName).Select(m => m.Value).ToList();
        List<long> Totals(Func<MemorySample, long> size) => Enumerable.Range(0, stack.Min(s => s.Count)).Select(i => stack.Sum(s => size(s[i]))).ToList();
        var (rssTotals, pssTotals) = (Totals(s => s.Rss), Totals(s => s.Pss));
        table.AddRow(Row("[bold]whole stack (without the simulator)[/]", rssTotals, pssTotals));
        table.Caption($"RSS and PSS of each process (PostgreSQL: its server processes summed), sampled every {RssSample.TotalSeconds:N0} s ({pssTotals.Count} samples). RSS counts the pages a process shares with others (the .NET runtime's and the native libraries' files, PostgreSQL's shared buffers) in each of them; PSS divides them among their sharers, so the whole stack's PSS is what the machine spends on it. The bench process holds the embedded broker; anvil (for the API's chain reads) is left out. Goal: flat, the whole stack under 1,536 MB.");
        AnsiConsole.Write(table);
        var step = soak.Step;
        AnsiConsole.MarkupLineInterpolated($"Soak readings: acknowledged {step.AcknowledgedPerSecond:N0}/s, freshness p50 {step.P50Ms:N0} ms, p99 {step.P99Ms:N0} ms, lost {step.Lost}, doubled {step.Doubled}; load average {LoadAverage()}.");
    }

    private static string Mb(long bytes) => $"{bytes / 1_048_576.0:N0} MB";

    private static string LoadAverage() => File.ReadAllText("/proc/loadavg").Split(' ')[0];

    private const string SimulatorName = "simulator (load)";

    private sealed record StepResult(int Target, double SentPerSecond, double AcknowledgedPerSecond, double P50Ms, double P99Ms, long Lost, long Doubled,
        Dictionary<string, double> CpuMicrosecondsPerReading, long Readings, double WallSeconds)
    {
        /// <summary>
        /// Nothing lost, the edge acknowledging what was sent, the lake at most ten times the goal behind, and at least 70 %
        /// of the offered rate sent: the simulator waits out the edge's 503s, so a stack that cannot take more shows as less sent.
        /// </summary>
        public bool KeepsUp => Lost == 0 && Doubled == 0 && AcknowledgedPerSecond >= 0.95 * SentPerSecond && P99Ms <= 10 * FreshnessGoalMs && SentPerSecond >= 0.7 * Target;

        // The simulator's pace only approximates the target (cars stop at junctions), so the edge is judged against what was sent.
        public bool Holds => Lost == 0 && Doubled == 0 && P99Ms <= FreshnessGoalMs && AcknowledgedPerSecond >= 0.95 * SentPerSecond;
    }

    private sealed record MemorySample(long Rss, long Pss);

    private sealed record SoakResult(StepResult Step, Dictionary<string, List<MemorySample>> Memory, TimeSpan Elapsed);

    /// <summary>One `depin` process of the stack, its log in the scratch folder.</summary>
    private sealed record StageProcess(string Name, Process Process, string? HealthUrl);

    /// <summary>The infrastructure in this process, each stage in its own, and what the bench watches of them.</summary>
    private sealed class Stack : IAsyncDisposable
    {
        private readonly DevServers _servers;
        private readonly NpgsqlDataSource _dataSource;
        private readonly string _cli;
        private readonly Endpoints _endpoints;
        private readonly Dictionary<string, long> _seenAt = [];
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _lakeWatch;
        private long _acceptedSoFar;

        private Stack(string folder, DevServers servers, string cli, Endpoints endpoints, List<StageProcess> stages)
        {
            Folder = folder;
            _servers = servers;
            _cli = cli;
            _endpoints = endpoints;
            Stages = stages;
            _dataSource = NpgsqlDataSource.Create(Named(servers.PostgresConnectionString!, "depin-bench"));
            _lakeWatch = WatchLakeAsync(_stop.Token);
        }

        public string Folder { get; }
        public List<StageProcess> Stages { get; }
        private string Lake => Path.Combine(Folder, "lake");
        public string PostgresFolder => Path.Combine(Folder, "postgres");
        public string PostgresConnectionString => _servers.PostgresConnectionString!;

        private sealed record Endpoints(int Api, int Ingest, int Mqtt, int Status);

        public static async Task<Stack> StartAsync(CancellationToken stop)
        {
            var folder = Directory.CreateTempSubdirectory("depin-e2e-").FullName;
            Directory.CreateDirectory(Path.Combine(folder, "logs"));
            var configuration = PipelineConfiguration.Build([]);
            var endpoints = new Endpoints(Port("PIPELINE_API_PORT"), Port("PIPELINE_INGEST_PORT"), Port("PIPELINE_MQTT_PORT"), Port("PIPELINE_STATUS_PORT"));
            var options = PipelineConfiguration.DevServers(configuration);
            options.DataDirectory = folder;
            options.WithChain = true;
            options.ChainPort = Port("PIPELINE_CHAIN_PORT");
            options.Postgres = new PostgresOptions { Port = Environment.GetEnvironmentVariable("PIPELINE_POSTGRES_PORT") is { } pg ? int.Parse(pg, CultureInfo.InvariantCulture) : Scratch.FreePort() };
            var servers = await AnsiConsole.Status().StartAsync("Starting PostgreSQL, the embedded broker and anvil in this process…", _ => DevServers.StartAsync(options, NullLogger.Instance, CancellationToken.None));

            var cli = Path.Combine(RepositoryTools.Root, "cli", "bin", new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name, "net10.0", "depin.dll");
            if (!File.Exists(cli)) throw new FileNotFoundException($"The CLI is not built at {cli}: run ./depin bench e2e, which builds it.");
            // Each stage's connections named after it, so PostgreSQL's CPU can be told apart by who asked (a stage's own
            // named pools keep their names).
            string[] Common(string stage) => ["--data", folder, "--kafka", servers.KafkaBootstrapServers!, "--postgres", Named(servers.PostgresConnectionString!, $"depin-{stage}")];
            var stages = new List<StageProcess>();
            var stack = new Stack(folder, servers, cli, endpoints, stages);
            try
            {
                await AnsiConsole.Status().StartAsync("Starting the stage processes…", async _ =>
                {
                    stages.Add(stack.Start("api", ["api", .. Common("api"), "--api-port", $"{endpoints.Api}", "--chain-port", $"{options.ChainPort}"], $"http://127.0.0.1:{endpoints.Api}"));
                    stages.Add(stack.Start("ingest", ["ingest", .. Common("ingest"), "--ingest-port", $"{endpoints.Ingest}", "--mqtt-port", $"{endpoints.Mqtt}"], $"http://127.0.0.1:{endpoints.Ingest}"));
                    stages.Add(stack.Start("streams 1", ["streams", .. Common("streams"), "--status-port", $"{endpoints.Status}"], $"http://127.0.0.1:{endpoints.Status}"));
                    stages.Add(stack.Start("streams 2", ["streams", .. Common("streams"), "--status-port", $"{endpoints.Status + 1}"], $"http://127.0.0.1:{endpoints.Status + 1}"));
                    stages.Add(stack.Start("projections", ["projections", .. Common("projections"), "--status-port", $"{endpoints.Status + 2}"], $"http://127.0.0.1:{endpoints.Status + 2}"));
                    await Task.WhenAll(stages.Select(stage => stack.WaitHealthyAsync(stage, stop)));
                });
            }
            catch
            {
                await stack.DisposeAsync();
                throw;
            }
            return stack;
        }

        private static string Named(string connectionString, string applicationName) =>
            new NpgsqlConnectionStringBuilder(connectionString) { ApplicationName = applicationName }.ConnectionString;

        /// <summary>A port from the environment (each helper on a shared machine has its own), else a free one.</summary>
        private static int Port(string variable) =>
            Environment.GetEnvironmentVariable(variable) is { } value ? int.Parse(value, CultureInfo.InvariantCulture) : Scratch.FreePort();

        /// <summary>`dotnet depin.dll …` with its output in logs/; exec keeps the pid the dotnet process's own, for /proc.</summary>
        private StageProcess Start(string name, string[] arguments, string? healthUrl, Dictionary<string, string>? environment = null)
        {
            var log = Path.Combine(Folder, "logs", name.Replace(' ', '-') + ".log");
            var start = new ProcessStartInfo("/bin/sh", ["-c", "exec dotnet \"$@\" > \"$LOG\" 2>&1", "sh", _cli, .. arguments]);
            start.Environment["LOG"] = log;
            // The mock cluster keeps 5 MiB per partition: the edge's backlog gate needs to know (depin up sets it for its own broker).
            start.Environment["PIPELINE_Kafka__Embedded"] = "true";
            start.Environment["PIPELINE_Logging__LogLevel__Default"] = "Warning";
            // exec keeps the shell's pid, whose parent is this process: a bench killed outright leaves no stage behind.
            start.Environment[ParentWatch.Variable] = $"{Environment.ProcessId}";
            // 1,100 devices register from one address in the warm-up; the registry's default allows 20/s.
            start.Environment["PIPELINE_Registry__Limits__ClientWritesPerSecond"] = "1000";
            start.Environment["PIPELINE_Registry__Limits__ClientWriteBurst"] = "2000";
            foreach (var (key, value) in environment ?? []) start.Environment[key] = value;
            return new StageProcess(name, Process.Start(start) ?? throw new InvalidOperationException($"{name} did not start."), healthUrl);
        }

        private async Task WaitHealthyAsync(StageProcess stage, CancellationToken stop)
        {
            using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            var clock = Stopwatch.StartNew();
            while (true)
            {
                if (stage.Process.HasExited) throw new InvalidOperationException($"{stage.Name} exited ({stage.Process.ExitCode}) while starting; see {Folder}/logs.");
                if (clock.Elapsed > TimeSpan.FromMinutes(3)) throw new TimeoutException($"{stage.Name} was not healthy within 3 minutes; see {Folder}/logs.");
                try
                {
                    using var response = await client.GetAsync($"{stage.HealthUrl}/health", stop);
                    if (response.IsSuccessStatusCode) return;
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !stop.IsCancellationRequested)
                {
                    // Not listening yet.
                }
                await Task.Delay(250, stop);
            }
        }

        /// <summary>
        /// Notes when each lake file first appears in the manifest: files and checkpoint commit together, so from then
        /// on its rows are queryable. The time is that of the poll that saw it (late by at most one poll).
        /// </summary>
        private async Task WatchLakeAsync(CancellationToken cancellation)
        {
            long since = -1;
            var schema = new EventStoreOptions().Schema;
            while (!cancellation.IsCancellationRequested)
            {
                try
                {
                    await using var command = _dataSource.CreateCommand($"SELECT path, live_from FROM {schema}.lake_files WHERE live_from >= $1 AND dataset IN ('vehicle_signals', 'weather_observations')");
                    command.Parameters.Add(new NpgsqlParameter { Value = since });
                    await using var reader = await command.ExecuteReaderAsync(cancellation);
                    var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
                    lock (_seenAt)
                        while (reader.Read())
                        {
                            _seenAt.TryAdd(reader.GetString(0), now);
                            since = Math.Max(since, reader.GetInt64(1));
                        }
                }
                catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
                {
                    // The projector has not created the manifest yet.
                }
                catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
                {
                    return;
                }
                try
                {
                    await Task.Delay(LakePoll, cancellation);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }

        /// <summary>The simulator at one rate, then the lake caught up, then the ledger checked against it.</summary>
        public async Task<StepResult> RunStepAsync(int rate, TimeSpan duration, CancellationToken stop)
        {
            var (cpu, clock) = (CpuTimes(), Stopwatch.StartNew());
            var simulator = StartSimulator(rate, duration);
            using (Interruption.KillOnStop(simulator.Process, stop)) await simulator.Process.WaitForExitAsync(stop);
            if (simulator.Process.ExitCode != 0) throw new InvalidOperationException($"The simulator failed ({simulator.Process.ExitCode}); see {Folder}/logs/simulator.log.");
            return await CheckAsync(rate, cpu, clock, stop);
        }

        /// <summary>Cores each process keeps busy with no readings coming: pollers, timers, the GC.</summary>
        public async Task<Dictionary<string, double>> IdleCoresAsync(TimeSpan duration, CancellationToken stop)
        {
            var (before, clock) = (CpuTimes(), Stopwatch.StartNew());
            await Task.Delay(duration, stop);
            var after = CpuTimes();
            return after.ToDictionary(c => c.Key, c => (c.Value - before[c.Key]).TotalSeconds / clock.Elapsed.TotalSeconds);
        }

        /// <summary>One long simulator run with every process's memory sampled as it goes.</summary>
        public async Task<SoakResult> SoakAsync(int rate, TimeSpan duration, CancellationToken stop)
        {
            var memory = new Dictionary<string, List<MemorySample>>();
            var cpu = CpuTimes();
            var clock = Stopwatch.StartNew();
            var simulator = StartSimulator(rate, duration);
            using var kill = Interruption.KillOnStop(simulator.Process, stop);
            await AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn()).StartAsync(async progress =>
            {
                var task = progress.AddTask($"Soak at {rate:N0} readings/s", maxValue: duration.TotalSeconds);
                while (!simulator.Process.HasExited)
                {
                    foreach (var (name, sample) in MemoryNow(simulator)) (memory.TryGetValue(name, out var list) ? list : memory[name] = []).Add(sample);
                    var total = memory.Where(m => m.Key != SimulatorName).Sum(m => m.Value[^1].Pss);
                    task.Description = $"Soak at {rate:N0} readings/s — stack {Mb(total)} (PSS)";
                    task.Value = Math.Min(clock.Elapsed.TotalSeconds, duration.TotalSeconds);
                    await Task.WhenAny(simulator.Process.WaitForExitAsync(), Task.Delay(RssSample, stop));
                }
                stop.ThrowIfCancellationRequested();
                task.Value = duration.TotalSeconds;
            });
            if (simulator.Process.ExitCode != 0) throw new InvalidOperationException($"The simulator failed ({simulator.Process.ExitCode}); see {Folder}/logs/simulator.log.");
            var step = await AnsiConsole.Status().StartAsync("Waiting for the lake to hold the soak's readings…", _ => CheckAsync(rate, cpu, clock, stop));
            return new SoakResult(step, memory, clock.Elapsed);
        }

        private StageProcess StartSimulator(int rate, TimeSpan duration) => Start("simulator",
            ["simulate", "--vehicles", $"{Vehicles}", "--stations", $"{Stations}", "--rate", $"{rate}", "--duration", $"{duration.TotalSeconds}s", "--no-progress",
             "--api", $"http://127.0.0.1:{_endpoints.Api}", "--ingest", $"http://127.0.0.1:{_endpoints.Ingest}", "--mqtt", $"127.0.0.1:{_endpoints.Mqtt}"],
            healthUrl: null, new() { ["PIPELINE_DATA"] = Folder });

        private async Task<StepResult> CheckAsync(int rate, Dictionary<string, TimeSpan> cpuBefore, Stopwatch clock, CancellationToken stop)
        {
            var ledger = File.ReadLines(Path.Combine(Folder, "simulator", "ledger-seed-1.ndjson"))
                .Select(line => JsonSerializer.Deserialize<LedgerEntry>(line, JsonSerializerOptions.Web)!).ToList();
            var accepted = ledger.Where(e => e.Edge == "accepted").Select(e => e.ReadingId!).ToList();
            _acceptedSoFar += accepted.Count;
            await WaitForLakeRowsAsync(_acceptedSoFar, stop);
            var (cpu, wallSeconds) = (CpuTimes(), clock.Elapsed.TotalSeconds);
            var perReading = cpu.ToDictionary(c => c.Key, c => (c.Value - cpuBefore[c.Key]).TotalMicroseconds / Math.Max(1, accepted.Count));
            var lake = CheckLake(accepted);
            var seconds = Math.Max(0.001, lake.WindowSeconds);
            return new StepResult(rate, ledger.Count / seconds, accepted.Count / seconds, lake.P50Ms, lake.P99Ms, lake.Lost, lake.Doubled, perReading, accepted.Count, wallSeconds);
        }

        /// <summary>Until the live lake has as many reading rows as the edge acknowledged so far (or the patience runs out: then the check counts what is missing).</summary>
        private async Task WaitForLakeRowsAsync(long expected, CancellationToken stop)
        {
            var schema = new EventStoreOptions().Schema;
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < CatchUpTimeout)
            {
                await using var command = _dataSource.CreateCommand($"SELECT coalesce(sum(rows), 0) FROM {schema}.lake_files WHERE retired_seq IS NULL AND dataset IN ('vehicle_signals', 'weather_observations')");
                if (Convert.ToInt64(await command.ExecuteScalarAsync(stop), CultureInfo.InvariantCulture) >= expected) break;
                await Task.Delay(250, stop);
            }
            // One more poll of the watcher, so the last file's time is noted.
            await Task.Delay(LakePoll * 2, stop);
        }

        private sealed record LakeCheck(double WindowSeconds, double P50Ms, double P99Ms, long Lost, long Doubled);

        /// <summary>
        /// With DuckDB over every lake file the watcher saw (retired ones included: a reading is queryable from the first
        /// file it was in): per acknowledged reading of the ledger, the first time it was queryable minus its edge
        /// receipt; readings in no file (lost); readings more than once in the live files (doubled).
        /// </summary>
        private LakeCheck CheckLake(List<string> accepted)
        {
            lock (_seenAt)
                if (_seenAt.Count == 0) return new LakeCheck(double.NaN, double.NaN, double.NaN, accepted.Count, 0);
            using var duck = new DuckDBConnection("DataSource=:memory:");
            duck.Open();
            Execute(duck, "CREATE TABLE seen (path VARCHAR, seen_ms BIGINT, live BOOLEAN); CREATE TABLE ids (reading_id VARCHAR)");
            var live = LiveFiles();
            using (var appender = duck.CreateAppender("seen"))
                lock (_seenAt)
                    foreach (var (path, ms) in _seenAt)
                        appender.CreateRow().AppendValue(Path.Combine(Lake, path)).AppendValue(ms).AppendValue(live.Contains(path)).EndRow();
            using (var appender = duck.CreateAppender("ids"))
                foreach (var id in accepted) appender.CreateRow().AppendValue(id).EndRow();
            // read_parquet takes its list of files as a constant.
            string files;
            lock (_seenAt) files = string.Join(", ", _seenAt.Keys.Select(p => $"'{Path.Combine(Lake, p).Replace("'", "''", StringComparison.Ordinal)}'"));
            using var command = duck.CreateCommand();
            command.CommandText = $$"""
                WITH lake AS (SELECT reading_id, epoch_ms(received_at) AS received_ms, filename FROM read_parquet([{{files}}], filename = true, union_by_name = true)
                              WHERE reading_id IN (SELECT reading_id FROM ids)),
                     per_reading AS (SELECT l.reading_id, min(l.received_ms) AS received_ms, min(s.seen_ms) - min(l.received_ms) AS fresh_ms, count(*) FILTER (WHERE s.live) AS live_copies
                                     FROM lake l JOIN seen s ON s.path = l.filename GROUP BY l.reading_id)
                SELECT (max(received_ms) - min(received_ms)) / 1000.0, quantile_cont(fresh_ms, 0.5), quantile_cont(fresh_ms, 0.99),
                       (SELECT count(*) FROM ids) - count(*), count(*) FILTER (WHERE live_copies > 1)
                FROM per_reading
                """;
            using var reader = command.ExecuteReader();
            reader.Read();
            double Number(int i) => reader.IsDBNull(i) ? double.NaN : Convert.ToDouble(reader.GetValue(i), CultureInfo.InvariantCulture);
            return new LakeCheck(Number(0), Number(1), Number(2), (long)Number(3), (long)Number(4));
        }

        private HashSet<string> LiveFiles()
        {
            using var command = _dataSource.CreateCommand($"SELECT path FROM {new EventStoreOptions().Schema}.lake_files WHERE retired_seq IS NULL");
            using var reader = command.ExecuteReader();
            var live = new HashSet<string>();
            while (reader.Read()) live.Add(reader.GetString(0));
            return live;
        }

        private static void Execute(DuckDBConnection connection, string sql)
        {
            using var command = connection.CreateCommand();
            command.CommandText = sql;
            command.ExecuteNonQuery();
        }

        /// <summary>CPU time (user and system, as /proc/&lt;pid&gt;/stat counts it) of each stage, the processors summed, and of PostgreSQL's server processes.</summary>
        private Dictionary<string, TimeSpan> CpuTimes()
        {
            var times = new Dictionary<string, TimeSpan>();
            foreach (var stage in Stages.Where(s => s.Name != "api"))
            {
                stage.Process.Refresh();
                var name = stage.Name.StartsWith("streams", StringComparison.Ordinal) ? "streams (2)" : stage.Name;
                times[name] = times.GetValueOrDefault(name) + stage.Process.TotalProcessorTime;
            }
            // Backends come and go: the ones that ended count through the postmaster's reaped children's time (the first, postmaster, process).
            var postgres = PostgresShare.ServerProcesses(PostgresFolder);
            times["PostgreSQL"] = PostgresShare.Cpu(postgres.Sum(pid => PostgresShare.Ticks(pid, withReapedChildren: pid == postgres[0])));
            return times;
        }

        /// <summary>RSS and PSS of every .NET process (this one holds the broker), and summed over PostgreSQL's processes.</summary>
        private IEnumerable<(string Name, MemorySample Sample)> MemoryNow(StageProcess simulator)
        {
            yield return ("bench (embedded broker, lake watcher)", Sample(Environment.ProcessId));
            foreach (var stage in Stages) yield return (stage.Name, Sample(stage.Process.Id));
            var postgres = PostgresShare.ServerProcesses(PostgresFolder).Select(Sample).ToList();
            yield return ("PostgreSQL (all server processes)", new MemorySample(postgres.Sum(s => s.Rss), postgres.Sum(s => s.Pss)));
            yield return (SimulatorName, Sample(simulator.Process.Id));
        }

        /// <summary>From /proc/&lt;pid&gt;/smaps_rollup; zero for a process that has ended.</summary>
        private static MemorySample Sample(int pid)
        {
            try
            {
                var fields = File.ReadLines($"/proc/{pid}/smaps_rollup").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Where(f => f is [_, _, "kB"])
                    .ToDictionary(f => f[0], f => long.Parse(f[1], CultureInfo.InvariantCulture) * 1024);
                return new MemorySample(fields.GetValueOrDefault("Rss:"), fields.GetValueOrDefault("Pss:"));
            }
            catch (IOException)
            {
                return new MemorySample(0, 0);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _lakeWatch;
            foreach (var stage in Stages.Where(s => !s.Process.HasExited))
                Signals.Send(stage.Process.Id, Signals.Term);
            foreach (var stage in Stages)
            {
                using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(20));
                try { await stage.Process.WaitForExitAsync(patience.Token); }
                catch (OperationCanceledException) { stage.Process.Kill(); }
                stage.Process.Dispose();
            }
            await _dataSource.DisposeAsync();
            await _servers.DisposeAsync();
            // The processes' logs stay for a look afterwards; the cluster, the broker's and the lake's files go.
            foreach (var entry in new DirectoryInfo(Folder).EnumerateFileSystemInfos().Where(e => e.Name != "logs"))
                if (entry is DirectoryInfo folder) folder.Delete(recursive: true); else entry.Delete();
        }
    }
}
