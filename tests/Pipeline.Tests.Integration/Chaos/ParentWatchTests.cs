using System.Globalization;
using System.Text.RegularExpressions;
using Pipeline.Tests.Integration.Cli;

namespace Pipeline.Tests.Integration.Chaos;

/// <summary>
/// Issue 16: a stage started by a supervising depin (chaos, bench e2e) that names it in PIPELINE_PARENT_PID stops when
/// that parent is killed with SIGKILL, instead of running on with its ports held.
/// </summary>
[Trait("Category", "Integration")]
public sealed partial class ParentWatchTests
{
    [Fact]
    public async Task Stage_ParentKilledWithSigkill_StopsOnItsOwn()
    {
        await using var folder = new DepinUp();
        // A shell stands in for the supervisor: it starts the stage as its child, naming itself, and prints the stage's pid.
        var parent = folder.Start("/bin/sh", ["-c", "PIPELINE_PARENT_PID=$$ dotnet \"$0\" ingest & echo \"stage $!\"; wait", Path.Combine(AppContext.BaseDirectory, "depin.dll")]);
        var stage = await StagePidAsync(parent);
        await WaitForHealthAsync(folder.IngestPort, parent);

        parent.Kill();

        var deadline = DateTime.UtcNow.AddMinutes(1);
        while (IsRunning(stage))
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"The stage (pid {stage}) still runs a minute after its parent was killed:\n{parent.Output}");
            await Task.Delay(100);
        }
    }

    private static async Task<int> StagePidAsync(DepinRun parent)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (StageLine().Match(parent.Output) is not { Success: true } match)
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"The shell printed no stage pid:\n{parent.Output}");
            await Task.Delay(50);
        }
        return int.Parse(StageLine().Match(parent.Output).Groups[1].Value, CultureInfo.InvariantCulture);
    }

    private static async Task WaitForHealthAsync(int port, DepinRun parent)
    {
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (true)
        {
            try
            {
                using var response = await client.GetAsync($"http://127.0.0.1:{port}/health");
                if (response.IsSuccessStatusCode) return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                // Not listening yet.
            }
            if (DateTime.UtcNow > deadline) Assert.Fail($"The stage did not become healthy:\n{parent.Output}");
            await Task.Delay(250);
        }
    }

    /// <summary>Alive and not a zombie waiting for whoever adopted it to reap it.</summary>
    private static bool IsRunning(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }

    [GeneratedRegex(@"stage (\d+)")]
    private static partial Regex StageLine();
}
