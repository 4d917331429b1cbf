using System.Diagnostics;
using System.Text;

namespace Pipeline.Tests.Integration;

/// <summary>A `depin` stage (streams, projections) as a separate process — the binary an operator runs — so tests can SIGKILL it.</summary>
public sealed class DepinProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private DepinProcess(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public bool Running => !_process.HasExited;

    public string Output
    {
        get
        {
            lock (_output) return _output.ToString();
        }
    }

    public static DepinProcess Start(TestHost host, string stage = "streams", IDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "depin.dll"), stage])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = AppContext.BaseDirectory,
            Environment =
            {
                ["PIPELINE_POSTGRES"] = host.PostgresConnectionString,
                ["PIPELINE_KAFKA"] = host.KafkaBootstrapServers,
                ["PIPELINE_Kafka__RawTopic"] = host.RawTopic,
                ["PIPELINE_Kafka__RejectedTopic"] = host.RejectedTopic,
                ["PIPELINE_EventStore__Schema"] = host.Schema,
                ["PIPELINE_STATUS_PORT"] = "0",
                ["PIPELINE_DATA"] = Path.Combine(Path.GetTempPath(), "depin-processor-" + Guid.NewGuid().ToString("N")),
                ["PIPELINE_LOG_FORMAT"] = "json",
            },
        };
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) start.Environment[key] = value;
        return new DepinProcess(Process.Start(start)!);
    }

    /// <summary>
    /// The exit code once the process has ended by itself, or null if it is still running after <paramref name="timeout"/>.
    /// The wait without a timeout after it reads the output to its end, which the timed wait does not.
    /// </summary>
    public int? WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout)) return null;
        _process.WaitForExit();
        return _process.ExitCode;
    }

    /// <summary>SIGKILL: no shutdown hooks, no flush, whatever was in flight is simply gone.</summary>
    public void Kill()
    {
        if (_process.HasExited) return;
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }
}
