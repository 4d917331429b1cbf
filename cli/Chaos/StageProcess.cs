using System.Diagnostics;

namespace Pipeline.Cli.Chaos;

/// <summary>
/// One stage as its own `depin &lt;stage&gt;` process, kept running: whenever it exits (a signal, or a crash of its own)
/// it is started again. Its output goes to a log file in the chaos data folder.
/// </summary>
public sealed class StageProcess(string name, string stage, IReadOnlyDictionary<string, string> environment, string healthUrl, string logFile)
{
    private readonly Lock _gate = new();
    private Process? _process;
    private bool _signalled;
    private int _unexpectedExits;

    /// <summary>"streams-1": the stage and, when it runs more than once, which one.</summary>
    public string Name { get; } = name;

    public string HealthUrl { get; } = healthUrl;

    public string LogFile { get; } = logFile;

    /// <summary>Exits nobody asked for: a stage that gave up on its own (a crash, or a start against a database that was down).</summary>
    public int UnexpectedExits => Volatile.Read(ref _unexpectedExits);

    public int Starts { get; private set; }

    /// <summary>Runs the stage until <paramref name="stop"/>, starting it again each time it exits; then stops it with SIGTERM.</summary>
    public async Task SuperviseAsync(CancellationToken stop)
    {
        await using var log = new StreamWriter(LogFile, append: true) { AutoFlush = true };
        while (!stop.IsCancellationRequested)
        {
            var process = Start(log);
            try
            {
                await process.WaitForExitAsync(stop);
            }
            catch (OperationCanceledException)
            {
                await StopAsync(process);
                return;
            }
            lock (_gate)
            {
                if (!_signalled) Interlocked.Increment(ref _unexpectedExits);
                WriteLine(log, $"=== exited with {process.ExitCode}{(_signalled ? " (signalled by chaos)" : "")}");
                _process = null;
            }
            process.Dispose();
            // A stage that fails at once (its database down) is not started again in a tight loop.
            await Task.Delay(TimeSpan.FromMilliseconds(500), CancellationToken.None);
        }
    }

    /// <summary>Sends SIGKILL or SIGTERM to the running process; false when none runs (it is between two starts).</summary>
    public bool Signal(int signal)
    {
        lock (_gate)
        {
            if (_process is null || _process.HasExited) return false;
            _signalled = true;
            return Signals.Send(_process.Id, signal);
        }
    }

    /// <summary>Until /health answers 200.</summary>
    public async Task WaitHealthyAsync(HttpClient client, TimeSpan timeout, CancellationToken cancellation)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            try
            {
                using var response = await client.GetAsync(HealthUrl + "/health", cancellation);
                if (response.IsSuccessStatusCode) return;
            }
            catch (HttpRequestException)
            {
                // Not listening yet: starting, or started again after a signal.
            }
            catch (TaskCanceledException) when (!cancellation.IsCancellationRequested)
            {
                // The request timed out: the stage is busy starting.
            }
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"{Name} did not answer {HealthUrl}/health with 200 within {timeout.TotalSeconds:N0} s; the end of its log ({LogFile}):\n{string.Join('\n', File.ReadLines(LogFile).TakeLast(15))}");
            await Task.Delay(TimeSpan.FromMilliseconds(250), cancellation);
        }
    }

    private Process Start(StreamWriter log)
    {
        // The same depin as this one: `dotnet depin.dll` when run through dotnet, else the apphost itself.
        var self = Environment.ProcessPath!;
        var start = Path.GetFileNameWithoutExtension(self) == "dotnet"
            ? new ProcessStartInfo(self, [typeof(StageProcess).Assembly.Location, stage])
            : new ProcessStartInfo(self, [stage]);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.RedirectStandardInput = true;
        foreach (var (key, value) in environment) start.Environment[key] = value;
        // Killed with SIGKILL, this process cannot stop the stage: the stage watches for that itself.
        start.Environment[Hosting.ParentWatch.Variable] = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        lock (_gate)
        {
            WriteLine(log, $"=== start {++Starts} at {DateTimeOffset.UtcNow:O}");
            var process = new Process { StartInfo = start };
            process.OutputDataReceived += (_, e) => { if (e.Data is not null) WriteLine(log, e.Data); };
            process.ErrorDataReceived += (_, e) => { if (e.Data is not null) WriteLine(log, e.Data); };
            process.Start();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            _process = process;
            _signalled = false;
            return process;
        }
    }

    /// <summary>SIGTERM, and SIGKILL if the stage has not stopped 30 s later.</summary>
    private static async Task StopAsync(Process process)
    {
        if (process.HasExited) return;
        Signals.Send(process.Id, Signals.Term);
        using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await process.WaitForExitAsync(patience.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            await process.WaitForExitAsync(CancellationToken.None);
        }
    }

    private static void WriteLine(StreamWriter log, string line)
    {
        lock (log)
        {
            // The last lines of a stopped process may come after its log was closed.
            if (log.BaseStream is { CanWrite: true }) log.WriteLine(line);
        }
    }
}
