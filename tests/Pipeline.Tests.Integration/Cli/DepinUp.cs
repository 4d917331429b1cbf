using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Infra.Development;
using Pipeline.Infra.Postgres;

namespace Pipeline.Tests.Integration.Cli;

/// <summary>
/// A data folder of its own with free ports, and the depin processes run on it — `depin up` as an operator starts it,
/// and one-off commands — each with an environment that names that folder and those ports and nothing of the test run's.
/// Disposing stops what is still running, the local PostgreSQL cluster included, and deletes the folder.
/// </summary>
public sealed class DepinUp : IAsyncDisposable
{
    private static readonly string Dll = Path.Combine(AppContext.BaseDirectory, "depin.dll");
    private readonly List<DepinRun> _runs = [];

    public DepinUp()
    {
        Folder = Directory.CreateTempSubdirectory("depin-up-").FullName;
        Environment = new Dictionary<string, string>
        {
            ["PIPELINE_DATA"] = DataDirectory,
            ["PIPELINE_POSTGRES_PORT"] = $"{TestHost.FreePort()}",
            ["PIPELINE_API_PORT"] = $"{ApiPort}",
            ["PIPELINE_INGEST_PORT"] = $"{IngestPort}",
            ["PIPELINE_MQTT_PORT"] = $"{MqttPort}",
            ["PIPELINE_STATUS_PORT"] = "0",
            ["PIPELINE_CHAIN_PORT"] = $"{TestHost.FreePort()}",
        };
    }

    /// <summary>A working folder; the data folder is .data inside it.</summary>
    public string Folder { get; }

    public string DataDirectory => Path.Combine(Folder, ".data");

    public int ApiPort { get; } = TestHost.FreePort();
    public int IngestPort { get; } = TestHost.FreePort();
    public int MqttPort { get; } = TestHost.FreePort();
    public int PostgresPort => int.Parse(Environment["PIPELINE_POSTGRES_PORT"], System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The variables every process started here gets.</summary>
    public Dictionary<string, string> Environment { get; }

    /// <summary>`depin &lt;arguments&gt;` from the build the tests run on.</summary>
    public DepinRun Start(params string[] arguments) => Start("dotnet", [Dll, .. arguments]);

    /// <summary>Any program with this folder's environment, from the working folder.</summary>
    public DepinRun Start(string program, IReadOnlyList<string> arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Folder };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        foreach (var name in new[] { "PIPELINE_POSTGRES", "PIPELINE_KAFKA", "PIPELINE_CHAIN", "PIPELINE_EventStore__Schema", "PIPELINE_Kafka__RawTopic", "PIPELINE_Kafka__RejectedTopic" })
            start.Environment.Remove(name);
        foreach (var (name, value) in Environment) start.Environment[name] = value;
        var run = new DepinRun(Process.Start(start)!);
        _runs.Add(run);
        return run;
    }

    /// <summary>Runs a one-off command to its end.</summary>
    public async Task<DepinRun> RunAsync(params string[] arguments)
    {
        var run = Start(arguments);
        await run.WaitForExitAsync(TimeSpan.FromMinutes(3));
        return run;
    }

    /// <summary>Waits until the API answers /health with Healthy, or the process ends.</summary>
    public async Task WaitUntilHealthyAsync(DepinRun up, TimeSpan? timeout = null)
    {
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromMinutes(3));
        while (DateTime.UtcNow < deadline)
        {
            if (!up.Running) Assert.Fail($"depin up ended with {up.ExitCode}:\n{up.Output}");
            try
            {
                if ((await client.GetStringAsync($"http://127.0.0.1:{ApiPort}/health")).Contains("\"status\":\"Healthy\"", StringComparison.Ordinal)) return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                // Not listening yet.
            }
            await Task.Delay(250);
        }
        throw new TimeoutException($"depin up did not become healthy:\n{up.Output}");
    }

    /// <summary>Whether the local cluster of this folder is running (pg_ctl status).</summary>
    public Task<bool> PostgresRunningAsync() => Cluster().IsRunningAsync(CancellationToken.None);

    private LocalPostgres Cluster() => new(new PostgresOptions { Port = PostgresPort }, Path.Combine(DataDirectory, "postgres"), NullLogger.Instance);

    public async ValueTask DisposeAsync()
    {
        foreach (var run in _runs) await run.StopAsync();
        await Cluster().StopIfRunningAsync(CancellationToken.None);
        Directory.Delete(Folder, recursive: true);
    }
}

/// <summary>One depin process: its output (stdout and stderr, as lines arrive) and its end.</summary>
public sealed class DepinRun
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly StringBuilder _errors = new();

    public DepinRun(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) => Append(_output, e.Data);
        process.ErrorDataReceived += (_, e) => Append(_errors, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public int Pid => _process.Id;
    public bool Running => !_process.HasExited;
    public int ExitCode => _process.ExitCode;

    /// <summary>Standard error alone: where a refusal's one line goes.</summary>
    public string Errors => Read(_errors);

    /// <summary>Everything printed, stdout then stderr.</summary>
    public string Output => Read(_output) + Read(_errors);

    public async Task WaitForExitAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cancel.Token);
        // The last lines arrive after the exit.
        _process.WaitForExit();
    }

    /// <summary>SIGTERM (what a service manager sends; Ctrl-C is handled the same way), then waits for a clean stop.</summary>
    public async Task<int> StopAsync()
    {
        if (_process.HasExited) return _process.ExitCode;
        using (var kill = Process.Start("kill", ["-TERM", $"{_process.Id}"])) await kill.WaitForExitAsync();
        try
        {
            await WaitForExitAsync(TimeSpan.FromSeconds(90));
        }
        catch (OperationCanceledException)
        {
            Kill();
        }
        return _process.ExitCode;
    }

    /// <summary>SIGKILL: no shutdown at all, as when a host is killed.</summary>
    public void Kill()
    {
        if (_process.HasExited) return;
        _process.Kill();
        _process.WaitForExit();
    }

    private static void Append(StringBuilder builder, string? line)
    {
        if (line is null) return;
        lock (builder) builder.AppendLine(line);
    }

    private static string Read(StringBuilder builder)
    {
        lock (builder) return builder.ToString();
    }
}
